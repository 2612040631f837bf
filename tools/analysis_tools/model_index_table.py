"""The README's results table, generated from model-index.yml and the metafiles.

    python tools/analysis_tools/model_index_table.py            # print it
    python tools/analysis_tools/model_index_table.py --write    # update README.md in place

The metafiles (configs/<task>/metafile.yml) are the one source of the paper numbers;
tests/apis/test_model_index.py fails when README.md differs from this output.
"""
import argparse
import os.path as osp
import sys

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
sys.path.insert(0, ROOT)

from projects.eva.apis.model_index import readme_with_table, results_markdown  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--write', action='store_true', help='rewrite the table in README.md')
    p.add_argument('--readme', default=osp.join(ROOT, 'README.md'))
    args = p.parse_args(argv)
    table = results_markdown()
    if args.write:
        with open(args.readme) as f:
            text = f.read()
        with open(args.readme, 'w') as f:
            f.write(readme_with_table(text, table))
        print(f'updated {args.readme}')
    else:
        print(table, end='')
    return table


if __name__ == '__main__':
    main()
