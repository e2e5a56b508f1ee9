"""The seeded tuning / evaluation halves of benchmarks/split.py."""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from split import half_of, in_part, split_means, subset


def test_half_is_the_parity_of_the_salted_hash():
    for item in ("100007", "101027", "a", "b"):
        last = hashlib.sha256(f"deepcut-heldout-0:{item}".encode()).digest()[-1]
        assert half_of(item) == ("tune" if last % 2 == 0 else "eval")
    assert [half_of(i) for i in ("100007", "101027", "a", "b")] == ["tune", "eval", "eval", "tune"]
    assert in_part("a", "all") and in_part("a", "eval") and not in_part("a", "tune")
    with pytest.raises(ValueError, match="part"):
        in_part("a", "test")
    halves = [half_of(str(i)) for i in range(2000)]
    assert 0.45 < halves.count("tune") / 2000 < 0.55  # about half each


def test_split_means_by_hand(tmp_path):
    csv = tmp_path / "per_image.csv"
    csv.write_text("id,status,nmi,seconds\n100007,ok,0.5,1\nb,ok,0.7,3\na,ok,0.2,2\n"
                   "101027,failed,,\n")
    m = split_means(csv, ["nmi", "seconds"])
    assert m["tune"] == {"n": 2, "nmi": pytest.approx(0.6), "seconds": pytest.approx(2.0)}
    assert m["eval"] == {"n": 1, "nmi": pytest.approx(0.2), "seconds": pytest.approx(2.0)}
    assert m["all"]["n"] == 3 and m["all"]["nmi"] == pytest.approx(1.4 / 3)


def test_subset_keeps_one_half_in_order():
    class Loader:
        ids = ("100007", "101027", "a", "b")
        name = "toy"

        def __len__(self):
            return 4

        def __getitem__(self, i):
            return self.ids[i]

    tune = subset(Loader(), "tune")
    assert tune.ids == ["100007", "b"] and len(tune) == 2 and tune[1] == "b"
    assert tune.name == "toy" and subset(Loader(), "all").ids == Loader.ids
    assert subset(Loader(), "eval").ids == ["101027", "a"]
