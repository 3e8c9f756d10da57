"""Exit 1 unless two results files hold the same records, keys and statuses: the installed wheel's run against the
checkout's run of the same selection (.ci/package)."""

import sys

from conformance.model.record import key
from conformance.run import results


def main(a: str, b: str) -> int:
    first, second = ({key(r): r["status"] for r in results.read(p)["records"]} for p in (a, b))
    only = sorted(set(first) ^ set(second))
    differ = sorted(k for k in set(first) & set(second) if first[k] != second[k])
    for k in only[:10]:
        print(f"only in {'the first' if k in first else 'the second'}: {' '.join(k)}")
    for k in differ[:10]:
        print(f"status {first[k]} -> {second[k]}: {' '.join(k)}")
    print(f"same records: {len(first)} and {len(second)} records, {len(only)} in one file only, {len(differ)} with another status")
    return 1 if only or differ or not first else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
