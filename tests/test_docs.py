"""README.md and docs/*.md describe the product, not the story of how it was built.

A reader cannot know what "session 5" or "this session" was: a number is stated with what was
measured, on what, and the command (a date or commit where it matters). The history belongs
in commit messages.
"""
import glob
import os.path as osp
import re

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
# "session 4", "this session", "earlier sessions", "session-5", "a GPU session"...
HISTORY = re.compile(r'\bsessions?\b', re.IGNORECASE)


def user_docs():
    return [osp.join(ROOT, 'README.md')] + sorted(glob.glob(osp.join(ROOT, 'docs', '*.md')))


CODE_SPAN = re.compile(r'`[^`]*`')


def history_mentions(paths):
    """``path:line: text`` for every line that mentions a session outside a code span
    (``scope='session'``, ``InferenceSession`` are code, not history)."""
    found = []
    for path in paths:
        with open(path, encoding='utf-8') as f:
            for n, line in enumerate(f, 1):
                if HISTORY.search(CODE_SPAN.sub('', line)):
                    found.append(f'{osp.relpath(path, ROOT)}:{n}: {line.strip()[:120]}')
    return found


def test_readme_and_docs_do_not_narrate_sessions():
    found = history_mentions(user_docs())
    assert not found, ('README.md / docs/ mention work sessions; state what was measured, on '
                       'what, with the command instead:\n' + '\n'.join(found))


def test_the_check_sees_a_session(tmp_path):
    """The pattern catches the phrasings that were there, and leaves code names alone."""
    doc = tmp_path / 'doc.md'
    doc.write_text('Measured, session 5, quiet machine.\nBefore this session\'s changes\n'
                   'in earlier sessions\' runs\nthe session-4 rows\n'
                   'onnxruntime.InferenceSession runs it\n'
                   "a `scope='session'` fixture\n")
    assert [line.split(':')[1] for line in history_mentions([str(doc)])] == ['1', '2', '3', '4']
    assert len(user_docs()) > 1  # docs/ is found
