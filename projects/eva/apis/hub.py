"""Released weights by name, as ``timm.create_model(name, pretrained=True)`` gives them.

:func:`pretrained_checkpoint` downloads a model's official release file (the metafile's
``Converted From.Weights`` URL) into the cache, converts it once with the metafile's
``Converter`` command (its ``--format`` and options, run through
``tools/model_converters/eva_to_mm.py``) and keeps the converted file beside the release::

    $EVA_CACHE_DIR  (default: torch.hub.get_dir()/checkpoints/eva, i.e. $TORCH_HOME/hub/...)
        eva_21k_1k_336px_psz14_ema_89p6.pt         the official file, as released
        eva_21k_1k_336px_psz14_ema_89p6_mm.pth     converted, what the model loads

A download goes to ``<file>.part`` first and resumes from there (an HTTP ``Range`` request)
when it was interrupted; only a complete file takes the release's name. Offline, give the
release file as a local path or a mirror URL (``source``); without a network the error names
the URL and the cache path to put the file at.
"""
import importlib.util
import os
import os.path as osp
import shlex
import sys
import urllib.error
import urllib.request
from typing import List, Optional, Tuple, Union

from .model_index import ROOT, ModelInfo, get_model_info

CACHE_ENV = 'EVA_CACHE_DIR'
CONVERTER = osp.join(ROOT, 'tools', 'model_converters', 'eva_to_mm.py')
CHUNK = 1 << 20


class DownloadError(RuntimeError):
    """A release file could not be fetched; the message names the URL and the cache path."""


def cache_dir() -> str:
    """``$EVA_CACHE_DIR``, else torch hub's checkpoint folder (``$TORCH_HOME/hub/checkpoints``)
    plus ``eva``, where timm and torchvision keep their downloads."""
    folder = os.environ.get(CACHE_ENV)
    if folder:
        return osp.abspath(osp.expanduser(folder))
    import torch.hub
    return osp.join(torch.hub.get_dir(), 'checkpoints', 'eva')


def _progress(total: Optional[int], initial: int, name: str, enabled: bool):
    from tqdm import tqdm
    return tqdm(total=total, initial=initial, unit='B', unit_scale=True, unit_divisor=1024,
                desc=name, disable=not enabled, file=sys.stderr)


def download(url: str, dst: str, progress: bool = True, timeout: float = 60.0) -> str:
    """Fetch ``url`` to ``dst`` (kept if it exists), resuming a partial ``dst + '.part'``."""
    if osp.isfile(dst):
        return dst
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    part = dst + '.part'
    have = osp.getsize(part) if osp.isfile(part) else 0
    request = urllib.request.Request(url, headers={'Range': f'bytes={have}-'} if have else {})
    where = f'download it yourself to {dst}, or pass a local file or mirror URL'
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # the part is longer than the file: start again
            os.remove(part)
            return download(url, dst, progress, timeout)
        raise DownloadError(f'cannot download {url}: HTTP {e.code} {e.reason}; {where}') from e
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, 'reason', e)
        raise DownloadError(f'cannot download {url} (no network? {reason}); {where}') from e
    with response:
        resumed = have and response.status == 206 and \
            (response.headers.get('Content-Range') or '').startswith(f'bytes {have}-')
        if not resumed:
            have = 0  # the server sent the whole file
        length = response.headers.get('Content-Length')
        total = have + int(length) if length is not None else None
        done = have
        try:
            with open(part, 'ab' if resumed else 'wb') as f, \
                    _progress(total, have, osp.basename(dst), progress) as bar:
                while True:
                    chunk = response.read(CHUNK)
                    if not chunk:
                        break
                    f.write(chunk)
                    done += len(chunk)
                    bar.update(len(chunk))
        except OSError as e:  # connection lost: the part stays for the next try
            raise DownloadError(f'download of {url} stopped after {done} bytes ({e}); run '
                                f'again to resume from {part}') from e
    if total is not None and done != total:
        raise DownloadError(f'download of {url} stopped after {done} of {total} bytes; run '
                            f'again to resume from {part}')
    os.replace(part, dst)
    return dst


def converter_argv(info: ModelInfo) -> Tuple[List[str], str]:
    """The metafile's ``Converter`` command as ``(options, output name)``: the options
    (``--format NAME`` and e.g. ``--patch-size 16``) and the file name it writes."""
    if not info.converter or not info.weights_url:
        raise ValueError(f'{info.metafile}: model {info.name!r} has no released weights to '
                         f'download and convert' + (f' ({info.note})' if info.note else ''))
    words = shlex.split(info.converter)
    script = next((i for i, w in enumerate(words) if w.endswith('eva_to_mm.py')), None)
    if script is None:
        raise ValueError(f'{info.metafile}: model {info.name!r}: the Converter command does '
                         f'not run eva_to_mm.py: {info.converter!r}')
    words = words[script + 1:]
    positional, options, i = [], [], 0
    while i < len(words):
        if words[i].startswith('--'):
            takes_value = words[i] != '--no-ema' and '=' not in words[i]
            options += words[i:i + 1 + takes_value]
            i += 1 + takes_value
        else:
            positional.append(words[i])
            i += 1
    if len(positional) != 2 or '--format' not in ' '.join(options).replace('=', ' ').split():
        raise ValueError(f'{info.metafile}: model {info.name!r}: the Converter command must be '
                         f'"eva_to_mm.py SRC DST --format NAME [options]": {info.converter!r}')
    return options, osp.basename(positional[1])


def _run_converter(src: str, dst: str, options: List[str]) -> None:
    """``eva_to_mm.py SRC DST OPTIONS``, in this process (the command the metafile shows)."""
    spec = importlib.util.spec_from_file_location('_eva_to_mm', CONVERTER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        module.main([src, dst, *options])
    except SystemExit as e:  # its errors name the file and cause
        raise RuntimeError(f'converting {src} for {osp.basename(dst)}: {e}') from None


def pretrained_checkpoint(name: Union[str, ModelInfo], source: Union[bool, str, None] = True,
                          progress: bool = True) -> str:
    """The converted checkpoint of a released model, downloaded and converted on first use.

    Args:
        name: a model-index name (or its :class:`ModelInfo`).
        source: ``True`` (or None): the metafile's official URL; a local path of the official
            file; or a mirror URL (ending with ``/``: the release file name is appended).
        progress: show a progress bar while downloading.
    Returns:
        the path of the converted checkpoint in :func:`cache_dir`.
    """
    info = name if isinstance(name, ModelInfo) else get_model_info(name)
    options, converted_name = converter_argv(info)
    folder = cache_dir()
    converted = osp.join(folder, converted_name)
    if isinstance(source, str) and not source.startswith(('http://', 'https://', 'ftp://')):
        src = osp.abspath(osp.expanduser(source))
        if not osp.isfile(src):
            raise FileNotFoundError(f'release file of {info.name!r} not found: {src} (expected '
                                    f'{info.weight_file}, from {info.weights_url})')
    else:
        url = info.weights_url if source in (True, None) else source
        if url.endswith('/'):
            url += info.weight_file
        src = osp.join(folder, info.weight_file)
        if osp.isfile(converted) and not osp.isfile(src):
            return converted  # the release file was removed after conversion
        download(url, src, progress=progress)
    if osp.isfile(converted) and osp.getmtime(converted) >= osp.getmtime(src):
        return converted
    _run_converter(src, converted, options)
    return converted


__all__ = ['CACHE_ENV', 'DownloadError', 'cache_dir', 'download', 'converter_argv',
           'pretrained_checkpoint']
