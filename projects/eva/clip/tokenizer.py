"""CLIP's byte-level BPE tokenizer, offline.

mmpretrain's CLIP asks HuggingFace for ``openai/clip-vit-*`` tokenizer files, which needs the
network. The vocabulary itself is one small file, ``bpe_simple_vocab_16e6.txt.gz`` (49152
lines of BPE merges), shipped inside the ``open_clip_torch`` package; this module reads it from
there (or from any path) and implements the encoding itself: text cleaning, the CLIP word
regex, byte -> unicode mapping, greedy lowest-rank merges and ``<start_of_text>`` /
``<end_of_text>`` framing into a fixed context (EVA-CLIP: 77 tokens, vocab 49408).
"""
import gzip
import html
import importlib.util
import os.path as osp
import re
from functools import lru_cache
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmpretrain.registry import TOKENIZER

VOCAB_FILE = 'bpe_simple_vocab_16e6.txt.gz'
NUM_MERGES = 49152 - 256 - 2  # merges used by OpenAI CLIP -> vocab 256*2 + 48894 + 2 = 49408
SOT, EOT = '<start_of_text>', '<end_of_text>'


def default_bpe_path() -> str:
    """The vocabulary shipped in ``open_clip_torch`` (found without importing the package)."""
    spec = importlib.util.find_spec('open_clip')
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f'the CLIP BPE vocabulary {VOCAB_FILE} ships with the open_clip_torch package, '
            'which is not installed (pip install open_clip_torch), or pass bpe_path=')
    path = osp.join(list(spec.submodule_search_locations)[0], VOCAB_FILE)
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path} is missing from the installed open_clip_torch')
    return path


@lru_cache()
def byte_unicode_table() -> Dict[int, str]:
    """Reversible byte -> printable unicode character map (GPT-2/CLIP).

    Printable Latin-1 bytes keep their own character; the 68 others (controls, space, soft
    hyphen...) are shifted to code points 256, 257, ... so every byte string becomes a string
    of visible characters the BPE merges are written in. The insertion order (printable bytes
    first, then the shifted ones) is the order of the first 256 vocabulary ids.
    """
    keep = [*range(ord('!'), ord('~') + 1), *range(ord('¡'), ord('¬') + 1),
            *range(ord('®'), ord('ÿ') + 1)]
    table = {b: chr(b) for b in keep}
    others = [b for b in range(256) if b not in table]
    table.update({b: chr(256 + n) for n, b in enumerate(others)})
    return table


def _fix_text(text: str) -> str:
    try:
        import ftfy
    except ImportError:  # pragma: no cover - ftfy is a listed requirement
        return text
    return ftfy.fix_text(text)


def clean_text(text: str) -> str:
    """OpenAI CLIP's cleaning: ftfy, double html unescape, collapse whitespace, lower case."""
    text = html.unescape(html.unescape(_fix_text(text))).strip()
    return re.sub(r'\s+', ' ', text).strip().lower()


def _pairs(word: Tuple[str, ...]) -> set:
    return set(zip(word[:-1], word[1:]))


@TOKENIZER.register_module()
class EVACLIPTokenizer:
    """Text -> (N, context_length) int64 token ids, as OpenAI CLIP / open_clip.

    Args:
        bpe_path: the gzipped merges file; default: the copy inside ``open_clip_torch``.
        context_length: 77 for EVA-CLIP. Longer texts are cut and end with ``<end_of_text>``
            (open_clip's rule) unless ``truncate=False``, which raises instead (OpenAI's).
    """

    def __init__(self, bpe_path: Optional[str] = None, context_length: int = 77,
                 truncate: bool = True):
        bpe_path = bpe_path or default_bpe_path()
        if not osp.isfile(bpe_path):
            raise FileNotFoundError(f'CLIP BPE vocabulary not found: {bpe_path}')
        with gzip.open(bpe_path, 'rt', encoding='utf-8') as f:
            lines = f.read().split('\n')
        merges = [tuple(line.split()) for line in lines[1:NUM_MERGES + 1]]
        if len(merges) != NUM_MERGES or any(len(m) != 2 for m in merges):
            raise ValueError(f'{bpe_path}: expected {NUM_MERGES} BPE merges after the header, '
                             f'got {len(merges)} lines (is it bpe_simple_vocab_16e6.txt.gz?)')
        chars = list(byte_unicode_table().values())
        vocab = chars + [c + '</w>' for c in chars] + [''.join(m) for m in merges] + [SOT, EOT]
        self.encoder = {tok: i for i, tok in enumerate(vocab)}
        self.decoder = {i: tok for tok, i in self.encoder.items()}
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.byte_table = byte_unicode_table()
        self.byte_inverse = {c: b for b, c in self.byte_table.items()}
        self.sot_token, self.eot_token = self.encoder[SOT], self.encoder[EOT]
        self.vocab_size = len(vocab)
        self.context_length = context_length
        self.truncate = truncate
        self._cache = {SOT: SOT, EOT: EOT}
        import regex  # \p{L} / \p{N} classes are not in the stdlib ``re``
        self._word_re = regex.compile(
            r"<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|"
            r"[^\s\p{L}\p{N}]+", regex.IGNORECASE)

    # ------------------------------------------------------------------ BPE
    def bpe(self, token: str) -> str:
        """Merge the characters of one word (the last one tagged ``</w>``) by rank."""
        if token in self._cache:
            return self._cache[token]
        word = tuple(token[:-1]) + (token[-1] + '</w>', )
        pairs = _pairs(word)
        while pairs:
            best = min(pairs, key=lambda p: self.ranks.get(p, float('inf')))
            if best not in self.ranks:
                break
            merged, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = tuple(merged)
            if len(word) == 1:
                break
            pairs = _pairs(word)
        out = ' '.join(word)
        self._cache[token] = out
        return out

    def encode(self, text: str) -> List[int]:
        """Token ids of one text, without start/end tokens."""
        ids = []
        for piece in self._word_re.findall(clean_text(text)):
            piece = ''.join(self.byte_table[b] for b in piece.encode('utf-8'))
            ids.extend(self.encoder[t] for t in self.bpe(piece).split(' '))
        return ids

    def decode(self, ids: Sequence[int]) -> str:
        """Text of token ids; reading stops at ``<end_of_text>`` (the padding follows it)."""
        pieces = []
        for i in map(int, ids):
            if i == self.eot_token:
                break
            if i != self.sot_token:
                pieces.append(self.decoder[i])
        text = ''.join(pieces)
        data = bytearray(self.byte_inverse[c] for c in text)
        return data.decode('utf-8', errors='replace').replace('</w>', ' ').strip()

    # ------------------------------------------------------------------ batching
    def __call__(self, texts: Union[str, Sequence[str]],
                 context_length: Optional[int] = None) -> torch.Tensor:
        if isinstance(texts, str):
            texts = [texts]
        ctx = context_length or self.context_length
        out = torch.zeros(len(texts), ctx, dtype=torch.long)
        for row, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f'texts must be strings, got {type(text).__name__} at {row}')
            ids = [self.sot_token] + self.encode(text) + [self.eot_token]
            if len(ids) > ctx:
                if not self.truncate:
                    raise ValueError(f'text {row} has {len(ids)} tokens, more than the context '
                                     f'length {ctx}: {text[:60]!r}...')
                ids = ids[:ctx]
                ids[-1] = self.eot_token
            out[row, :len(ids)] = torch.tensor(ids)
        return out

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(vocab_size={self.vocab_size}, '
                f'context_length={self.context_length}, truncate={self.truncate})')


def build_tokenizer(cfg: Union[dict, EVACLIPTokenizer, None]) -> EVACLIPTokenizer:
    if cfg is None:
        return EVACLIPTokenizer()
    if isinstance(cfg, dict):
        return TOKENIZER.build(cfg)
    return cfg


__all__ = ['EVACLIPTokenizer', 'default_bpe_path', 'clean_text', 'build_tokenizer']
