"""The offline CLIP BPE tokenizer against open_clip's reference implementation."""
import pytest
import torch

from projects.eva.clip.tokenizer import EVACLIPTokenizer, clean_text, default_bpe_path

STRINGS = [
    'a photo of a cat.',
    'A PHOTO OF THE Hard To See tench!',
    "it's the dog's bone, we'll see; they'd've",
    'Hello, World!! 123 4567 3.14159',
    'Café naïve résumé — “quotes” ‘single’',
    '日本語のテキスト 中文 한국어 العربية русский',
    '😀 emoji 🚀 test 👩‍👩‍👧',
    '&amp;lt;b&amp;gt; html &quot;entities&quot;',
    'Ångström µ ß ǅ ﬁ ligature',
    '   multiple   spaces\n\ttabs and\r\nnewlines ',
    'mojibake: Ã©tÃ© â€œquotedâ€\x9d',
    '',
    'a ' * 100,  # longer than 77 tokens: cut, last token <end_of_text>
    'supercalifragilisticexpialidocious' * 12,
    'x' * 500,
]


@pytest.fixture(scope='module')
def tokenizers():
    open_clip_tokenizer = pytest.importorskip('open_clip.tokenizer')
    return EVACLIPTokenizer(), open_clip_tokenizer.SimpleTokenizer()


@pytest.mark.parametrize('text', STRINGS)
def test_matches_open_clip(tokenizers, text):
    ours, ref = tokenizers
    assert torch.equal(ours(text), ref(text)), text


def test_known_ids_and_layout(tokenizers):
    ours, _ = tokenizers
    assert ours.vocab_size == 49408
    ids = ours(['a photo of a cat.', 'hi'])
    assert ids.shape == (2, 77) and ids.dtype == torch.long
    # <start_of_text> a photo of a cat . <end_of_text>, then zero padding
    assert ids[0, :8].tolist() == [49406, 320, 1125, 539, 320, 2368, 269, 49407]
    assert ids[0, 8:].eq(0).all()
    assert ours.encode('photo') == [1125]


def test_truncation(tokenizers):
    ours, _ = tokenizers
    ids = ours('a ' * 100)[0]
    assert ids[0] == 49406 and ids[-1] == 49407 and ids.ne(0).all()
    assert ours('a ' * 100, context_length=16)[0].tolist() == [49406] + [320] * 14 + [49407]
    with pytest.raises(ValueError, match='more than the context length'):
        EVACLIPTokenizer(truncate=False)('a ' * 100)


def test_decode_round_trip(tokenizers):
    ours, _ = tokenizers
    for text in ('a photo of a cat', 'café naïve 日本語', '😀 rocket 🚀'):
        assert ours.decode(ours(text)[0]) == clean_text(text)


def test_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match='not found'):
        EVACLIPTokenizer(bpe_path=str(tmp_path / 'missing.txt.gz'))
    import gzip
    bad = tmp_path / 'bad.txt.gz'
    with gzip.open(bad, 'wt') as f:
        f.write('header\nl o\n')
    with pytest.raises(ValueError, match='BPE merges'):
        EVACLIPTokenizer(bpe_path=str(bad))
    with pytest.raises(TypeError, match='strings'):
        EVACLIPTokenizer()(['ok', 3])
    assert default_bpe_path().endswith('bpe_simple_vocab_16e6.txt.gz')
