"""A config that loads ``checkpoints/X`` must name a file that some documented command writes.

Users convert a released weight with the command in the metafile, README or docs/, then
train or test with a config; if the two spell the path differently the run stops with "file
not found" (the EVA-01 CLIP, detection, video and segmentation configs once read
``checkpoints/eva_*.pth`` or ``pretrained/*`` while the metafiles wrote
``checkpoints/eva/*``). One layout: ``checkpoints/eva/`` (EVA-01 releases),
``checkpoints/eva02/`` (EVA-02 releases) and ``checkpoints/clip/`` (OpenAI's CLIP file), each
converted file named after its release, ``<stem>_mm.pth``.
"""
import glob
import os.path as osp
import re

import yaml

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PATH = re.compile(r"(?:checkpoints|pretrained)/[\w./-]+?\.(?:pth|pt)\b")
LAYOUT = re.compile(r'checkpoints/(eva|eva02|clip)/[\w.-]+\.(pth|pt)$')
# words on a line (or the line before a wrapped argument) of a command that writes the file
PRODUCERS = ('eva_to_mm.py', 'model_converters', 'cp ', 'tools/train.py', 'dist_train.sh')
PLACEHOLDER = 'SET_ME'


def _configs():
    return sorted(glob.glob(osp.join(ROOT, 'configs', '**', '*.py'), recursive=True))


def _docs():
    return [osp.join(ROOT, 'README.md')] + sorted(glob.glob(osp.join(ROOT, 'docs', '*.md')))


def config_paths():
    """``{path: [config, ...]}`` for every checkpoint path in config code (not comments)."""
    found = {}
    for f in _configs():
        for line in open(f, encoding='utf-8'):
            for p in PATH.findall(line.split('#')[0]):
                found.setdefault(p, []).append(osp.relpath(f, ROOT))
    return found


def _written_in_lines(lines, wrapped_comments=False):
    """Paths on a producer line, and on the next line when the command goes on there (a
    trailing backslash; in config comments, which wrap without one, always)."""
    out = set()
    for i, line in enumerate(lines):
        if any(w in line for w in PRODUCERS):
            out.update(PATH.findall(line))
            if (wrapped_comments or line.rstrip().endswith('\\')) and i + 1 < len(lines):
                out.update(PATH.findall(lines[i + 1]))
    return out


def documented_outputs():
    """Paths a documented command writes: metafile ``Converter`` fields, commands in the
    README and docs/, and config comments (a config saying how to make its own input)."""
    out = set()
    for f in glob.glob(osp.join(ROOT, 'configs', '*', 'metafile.yml')):
        for model in yaml.safe_load(open(f, encoding='utf-8')).get('Models', []):
            out.update(PATH.findall(str(model.get('Converter', ''))))
    for f in _docs():
        out |= _written_in_lines(open(f, encoding='utf-8').read().splitlines())
    for f in _configs():
        comments = [ln.split('#', 1)[1] for ln in open(f, encoding='utf-8') if '#' in ln]
        out |= _written_in_lines(comments, wrapped_comments=True)
    return out


def test_every_config_checkpoint_follows_the_layout():
    bad = {p: cfgs for p, cfgs in config_paths().items()
           if not LAYOUT.match(p) and PLACEHOLDER not in p}
    assert not bad, f'checkpoint paths outside checkpoints/{{eva,eva02,clip}}/: {bad}'


def test_every_config_checkpoint_is_written_by_a_documented_command():
    written = documented_outputs()
    missing = {p: cfgs for p, cfgs in config_paths().items()
               if p not in written and PLACEHOLDER not in p}
    assert not missing, ('configs load files no documented command writes (add the convert '
                         f'command to the metafile, README, docs or the config): {missing}')


def test_documented_commands_write_into_the_layout():
    """The README and docs are what users copy: a stray ``checkpoints/eva_x_mm.pth`` there
    would break the config that reads ``checkpoints/eva/eva_x_mm.pth``."""
    bad = []
    for f in _docs():
        for n, line in enumerate(open(f, encoding='utf-8'), 1):
            bad += [f'{osp.relpath(f, ROOT)}:{n}: {p}' for p in PATH.findall(line)
                    if not LAYOUT.match(p)]
    assert not bad, '\n'.join(bad)


def test_the_checks_see_a_misplaced_path():
    """The layout rule refuses a flat path and the scanner only credits what a command writes
    (so the tests above can fail)."""
    assert not LAYOUT.match('checkpoints/eva_psz14_mm.pth')
    assert not LAYOUT.match('pretrained/eva_psz14to16_mm.pth')
    assert LAYOUT.match('checkpoints/eva02/eva02_B_pt_in21k_p14_mm.pth')
    lines = ['python tools/model_converters/eva_to_mm.py x.pt \\',
             '    checkpoints/eva/x_mm.pth', 'load_from = "checkpoints/eva/y_mm.pth"']
    assert _written_in_lines(lines) == {'checkpoints/eva/x_mm.pth'}
    assert _written_in_lines(lines[1:]) == set()
    assert _written_in_lines([' or eva_to_mm.py on it to', ' checkpoints/eva/z_mm.pth'],
                             wrapped_comments=True) == {'checkpoints/eva/z_mm.pth'}
