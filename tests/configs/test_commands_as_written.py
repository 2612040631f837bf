"""Every command written in the README, docs/, config comments and the metafiles runs as
written, up to the point where it needs data or weights: the script or module exists, its own
argument parser accepts the words as written (run in-process, stopped right after parsing),
the configs it names exist, and a converter command names the ``--format`` a release file
needs (the EVA-02 MIM config's teacher command once failed on ``eva_clip_psz14_vision_enc.pt``
without it). Usage synopses (``[--opt X]``, ``...``) are checked for their option names only.
"""
import argparse
import glob
import os
import os.path as osp
import re
import runpy
import shlex
import sys
import threading

import pytest
import yaml

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
START = re.compile(r'^(?:[A-Z_]+=\S*\s+)*(?:python3?\s|bash\s|tools/[\w/]+\.py\s)')
CONFIG = re.compile(r'^configs/[\w./-]+\.py$')
PLACEHOLDER = re.compile(r'[A-Z]{2,}|\$|\*|<|\.\.\.')
# released files whose tensors fit two formats: the command must choose (see the converter
# tests: a final norm + head is EVA-CLIP's tower with its projection or a cls-token classifier)
NEEDS_FORMAT = {'eva_clip_psz14_vision_enc.pt': 'eva-clip-vision'}


def _join_continued(lines):
    out, cur = [], ''
    for line in lines:
        if cur:
            cur += ' ' + line.strip()
        else:
            cur = line.strip()
        if cur.endswith('\\'):
            cur = cur[:-1].rstrip()
            continue
        out.append(cur)
        cur = ''
    if cur:
        out.append(cur)
    return out


def _markdown_commands(path):
    text = open(path, encoding='utf-8').read()
    found, fenced, prose = [], [], []
    inside = False
    for line in text.splitlines():
        if line.lstrip().startswith('```'):
            inside = not inside
            continue
        (fenced if inside else prose).append(line if inside else line + '\n')
    for cmd in _join_continued(fenced):
        cmd = re.sub(r'^\$\s+', '', cmd)
        if START.match(cmd):
            found.append(cmd)
    for span in re.findall(r'`([^`]+)`', ''.join(prose)):
        span = ' '.join(span.split())
        if START.match(span) and len(span.split()) > 2:
            found.append(span)
    return found


FILE_OR_OPTION = re.compile(r'^(?:[\w./-]+\.(?:pth?|safetensors)|--[\w-]+)$')


def _prose_conversions(comments):
    """``eva_to_mm.py SRC DST [--opt V]`` named inside a sentence, wrapped onto the next
    comment line without a backslash: the words that are files or options, as a command."""
    found = []
    for i, line in enumerate(comments):
        if 'eva_to_mm.py' not in line:
            continue
        rest = line.split('eva_to_mm.py', 1)[1].split()
        if i + 1 < len(comments):
            rest += comments[i + 1].split()
        words = []
        while rest:
            w = rest.pop(0).strip('`').rstrip('\\').rstrip(',;')
            if not w:
                continue
            if not FILE_OR_OPTION.match(w):
                break
            words.append(w)
            if w.startswith('--') and rest and not rest[0].startswith('--'):
                words.append(rest.pop(0).strip('`').rstrip('\\').rstrip(',;.)`'))
        if words:  # (a bare mention of the tool is no command)
            found.append(' '.join(['python tools/model_converters/eva_to_mm.py'] + words))
    return found


def _config_commands(path):
    comments = [ln.split('#', 1)[1] for ln in open(path, encoding='utf-8') if '#' in ln]
    found = _prose_conversions(comments)
    for line in _join_continued(comments):
        # a comment line that is a command ("Init: " labels allowed), not prose naming a tool
        m = re.match(r'\s*(?:[A-Z][\w ]*:\s+)?((?:python3?\s+)?tools/[\w/]+\.(?:py|sh)\s+\S.*)',
                     line)
        if m:  # up to a trailing explanation ("CKPT --tta: 3 scales", "8   (x16 nodes)")
            found.append(re.split(r':\s|\s{2,}|\s\(', m.group(1))[0].strip())
    return found


def _metafile_commands():
    for f in sorted(glob.glob(osp.join(ROOT, 'configs', '*', 'metafile.yml'))):
        for model in yaml.safe_load(open(f, encoding='utf-8')).get('Models') or []:
            if model.get('Converter'):
                yield osp.relpath(f, ROOT) + ':' + model['Name'], model['Converter']


def written_commands():
    """``[(where, command)]`` from README.md, docs/*.md, config comments and metafiles."""
    out = []
    for f in [osp.join(ROOT, 'README.md')] + sorted(glob.glob(osp.join(ROOT, 'docs', '*.md'))):
        out += [(osp.relpath(f, ROOT), c) for c in _markdown_commands(f)]
    for f in sorted(glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)):
        out += [(osp.relpath(f, ROOT), c) for c in _config_commands(f)]
    out += list(_metafile_commands())
    return out


def release_formats():
    """``{release file: converter format}`` from the metafiles' Converter commands."""
    fmts = {}
    for _, cmd in _metafile_commands():
        words = cmd.split()
        fmts[words[2]] = words[words.index('--format') + 1]
    return fmts


class _Parsed(Exception):
    def __init__(self, ns):
        self.ns = ns


_state = threading.local()


def _parse_only(argv, target, is_module, parser_only=False):
    """Run the tool's ``__main__`` with ``argv`` and stop it right after its parser accepted
    the words; returns the namespace (a parser error raises SystemExit from argparse), or
    with ``parser_only`` the parser itself, before it parses anything."""
    orig_args = argparse.ArgumentParser.parse_args
    orig_known = argparse.ArgumentParser.parse_known_args

    def parse_args(self, args=None, namespace=None):
        if parser_only:
            raise _Parsed(self)
        _state.inside = True
        try:
            ns = orig_args(self, args, namespace)
        finally:
            _state.inside = False
        raise _Parsed(ns)

    def parse_known_args(self, args=None, namespace=None):
        if getattr(_state, 'inside', False):
            return orig_known(self, args, namespace)
        if parser_only:
            raise _Parsed(self)
        raise _Parsed(orig_known(self, args, namespace))

    saved_argv, saved_path = sys.argv, list(sys.path)
    argparse.ArgumentParser.parse_args = parse_args
    argparse.ArgumentParser.parse_known_args = parse_known_args
    sys.argv = [target] + argv
    try:
        if is_module:
            runpy.run_module(target, run_name='__main__', alter_sys=False)
        else:
            runpy.run_path(target, run_name='__main__')
    except _Parsed as p:
        return p.ns
    finally:
        argparse.ArgumentParser.parse_args = orig_args
        argparse.ArgumentParser.parse_known_args = orig_known
        sys.argv, sys.path[:] = saved_argv, saved_path
    raise AssertionError(f'{target} finished without parsing arguments')


def check(cmd: str):
    """Raise AssertionError / SystemExit when ``cmd`` would not run as written."""
    words = shlex.split(cmd, comments=True)
    while words and re.match(r'^[A-Z_]+=', words[0]):
        words.pop(0)
    if words[0] in ('python', 'python3'):
        words.pop(0)
    elif words[0] == 'bash' or words[0].endswith('.sh'):
        words = words[1:] if words[0] == 'bash' else words
        assert osp.isfile(osp.join(ROOT, words[0])), f'no script {words[0]}'
        for w in words[1:]:
            if CONFIG.match(w) and not PLACEHOLDER.search(w):
                assert osp.isfile(osp.join(ROOT, w)), f'config not found: {w}'
        return
    if words[0] == '-m':
        module, args = words[1], words[2:]
        if module == 'pytest':
            return
        is_module = True
        assert osp.isfile(osp.join(ROOT, *module.split('.')) + '.py'), f'no module {module}'
        target = module
    elif words[0] == '-c':
        return
    else:
        script, args = words[0], words[1:]
        target = osp.join(ROOT, script)
        is_module = False
        assert osp.isfile(target), f'no script {script}'
    for w in args:
        if CONFIG.match(w) and not PLACEHOLDER.search(w):
            assert osp.isfile(osp.join(ROOT, w)), f'config not found: {w}'
    # a usage line: optional parts, repetition, or upper-case placeholders (CONFIG, N)
    synopsis = any(w.startswith('[') or w.endswith(']') or w.endswith('...') or
                   w == '|' or re.fullmatch(r'[A-Z][A-Z0-9_]*', w) for w in args)
    if synopsis or '--help' in args:
        parser = _parse_only([], target, is_module, parser_only=True)
        for opt in re.findall(r'(--[\w-]+)', ' '.join(args)):
            assert opt in parser._option_string_actions, f'{target} has no option {opt}'
        return
    ns = _parse_only(args, target, is_module)
    if target.endswith('eva_to_mm.py'):
        release = osp.basename(ns.src)
        want = NEEDS_FORMAT.get(release) or release_formats().get(release)
        if release in NEEDS_FORMAT:
            assert ns.format == want, f'{release} needs --format {want} (its tensors fit ' \
                                      'two formats)'
        if ns.format is not None and want is not None:
            assert ns.format == want, f'{release} is --format {want}, not {ns.format}'


COMMANDS = written_commands()


def test_commands_are_found():
    where = {w.split(':')[0].split('/')[0] for w, _ in COMMANDS}
    assert {'README.md', 'docs', 'configs'} <= where
    assert len(COMMANDS) > 100


@pytest.mark.parametrize('cmd', sorted({c for _, c in COMMANDS}))
def test_command_runs_as_written(cmd):
    try:
        check(cmd)
    except SystemExit as e:  # argparse's error exit: the message went to stderr
        raise AssertionError(f'{cmd!r}: its parser refused the words (exit {e.code}); '
                             f'written in {[w for w, c in COMMANDS if c == cmd]}') from None


def test_the_check_sees_broken_commands():
    """Each check can fail: an unknown option, a missing config, a missing script, the
    teacher command without --format, a --format that is not the release's."""
    conv = 'python tools/model_converters/eva_to_mm.py'
    with pytest.raises(SystemExit):
        check(f'{conv} eva_psz14.pt checkpoints/eva/x_mm.pth --patch-size 15')
    with pytest.raises(AssertionError, match='config not found'):
        check('python tools/test.py configs/classification/nope.py x.pth')
    with pytest.raises(AssertionError, match='no script'):
        check('python tools/nope.py a b')
    with pytest.raises(AssertionError, match='needs --format eva-clip-vision'):
        check(f'{conv} eva_clip_psz14_vision_enc.pt checkpoints/eva/eva_clip_psz14_vision_mm.pth')
    with pytest.raises(AssertionError, match='is --format eva01-det'):
        check(f'{conv} eva_coco_det.pth checkpoints/eva/eva_coco_det_mm.pth --format eva01-cls')
    with pytest.raises(AssertionError, match='has no option --frobnicate'):
        check('python tools/train.py CONFIG [--frobnicate]')
    check(f'{conv} eva_clip_psz14_vision_enc.pt checkpoints/eva/v_mm.pth '
          '--format eva-clip-vision')
