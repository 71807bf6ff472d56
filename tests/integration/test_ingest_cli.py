"""``moodtune ingest`` end to end: the demo catalog and the demo bundle against the moto server over HTTP.

Covers a first run, an identical re-run (idempotent: the table is the same), a run resumed after a
crash, and a catalog with bad lines (each reported with its line number, the good songs ingested).
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from rich.console import Console

from moodtune.catalog.ingest import SongScorer, ingest_file
from moodtune.emotion.classifier import EmotionClassifier
from moodtune_cli import app as cli
from moodtune_cli import ingest as ingest_cli
from tests.conftest import DEMO_BUNDLE, REGION, ROOT, TEMPLATE

pytestmark = pytest.mark.integration

DEMO_CATALOG = ROOT / "data" / "demo" / "songs.jsonl"


@pytest.fixture
def songs_table(local_aws: Any) -> Iterator[Any]:
    """A fresh SongsTable (template.yaml's definition) on the session's moto server."""
    from infra.local.aws import create_tables

    name = f"moodtune-songs-ingest-{uuid.uuid4().hex[:8]}"
    client = boto3.client("dynamodb", endpoint_url=local_aws.endpoint_url, region_name=REGION)
    create_tables(TEMPLATE, client, {"SongsTable": name})
    yield boto3.resource("dynamodb", endpoint_url=local_aws.endpoint_url, region_name=REGION).Table(name)
    client.delete_table(TableName=name)


def run_cli(local_aws: Any, table: Any, *args: str) -> tuple[int, str]:
    out = io.StringIO()
    status = cli.main(
        ["ingest", *args, "--endpoint-url", local_aws.endpoint_url, "--table", table.name, "--json"],
        console=Console(file=out, width=120),
    )
    return status, out.getvalue()


def table_items(table: Any) -> dict[str, dict[str, Any]]:
    items: dict[str, dict[str, Any]] = {}
    kwargs: dict[str, Any] = {}
    while True:
        page = table.scan(**kwargs)
        items.update({item["song_id"]: item for item in page["Items"]})
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def test_demo_catalog_ingests_and_a_rerun_changes_nothing(local_aws: Any, songs_table: Any) -> None:
    status, out = run_cli(local_aws, songs_table, str(DEMO_CATALOG), "--model-dir", str(DEMO_BUNDLE))
    assert status == 0, out
    report = json.loads(out)
    model_version = EmotionClassifier.from_bundle(DEMO_BUNDLE, threads=1).model_version
    assert report["model_version"] == model_version
    assert (report["songs"], report["written"], report["unchanged"], report["skipped"]) == (300, 300, 0, 0)
    assert report["chunks"] >= 300 and sum(report["dominant"].values()) == 300
    first = table_items(songs_table)
    assert len(first) == 300
    song = first["s0001"]
    assert song["model_version"] == model_version and song["title"] == "젖은 우산을 접으며"
    assert song["year"] == 2018 and song["genre"] == "ballad" and len(song["content_hash"]) == 64

    status, out = run_cli(local_aws, songs_table, str(DEMO_CATALOG), "--model-dir", str(DEMO_BUNDLE))
    again = json.loads(out)
    assert status == 0
    assert (again["written"], again["unchanged"], again["chunks"]) == (0, 300, 0)
    assert again["dominant"] == report["dominant"]
    assert table_items(songs_table) == first


def test_a_crashed_run_resumes_where_it_stopped(local_aws: Any, songs_table: Any) -> None:
    scorer = SongScorer(EmotionClassifier.from_bundle(DEMO_BUNDLE, threads=1))

    class Crash(Exception):
        pass

    def crash_after_first_group(report: Any, lines: int) -> None:
        raise Crash

    with pytest.raises(Crash):
        ingest_file(scorer, songs_table, DEMO_CATALOG, group_songs=100, progress=crash_after_first_group)
    assert len(table_items(songs_table)) == 100

    status, out = run_cli(local_aws, songs_table, str(DEMO_CATALOG), "--model-dir", str(DEMO_BUNDLE))
    report = json.loads(out)
    assert status == 0 and (report["unchanged"], report["written"]) == (100, 200)
    assert len(table_items(songs_table)) == 300


def test_bad_lines_are_listed_and_the_good_songs_ingested(
    local_aws: Any, songs_table: Any, tmp_path: Path
) -> None:
    good = DEMO_CATALOG.read_bytes().splitlines(keepends=True)[:5]

    def bad_song(song_id: str, **fields: object) -> bytes:
        base = {"song_id": song_id, "title": "t", "artist": "a", "lyrics": "가사"}
        return json.dumps({**base, **fields}, ensure_ascii=False).encode() + b"\n"

    catalog = tmp_path / "catalog.jsonl"
    catalog.write_bytes(
        b"".join(
            [
                good[0],
                b'{"song_id": "x1", "title": "t"\n',  # 2: malformed JSON
                good[1],
                json.dumps({"song_id": "x2", "title": "t", "artist": "a"}).encode() + b"\n",  # 4: no lyrics
                good[0],  # 5: duplicate song id
                "제목".encode("cp949") + b"\n",  # 6: not UTF-8
                bad_song("x7", lyrics=" \n\t\n"),  # 7: empty lyrics
                bad_song("x8", lyrics="가" * 11_000),  # 8: 33,000 bytes of lyrics, over 32 KiB
                bad_song("x9", lyrics="[Chorus]\n(후렴)\n(x2)"),  # 9: only section markers
                bad_song(
                    "x10", lyrics="\x01" * 30_000, external_ids={f"i{n}": "\x01" * 256 for n in range(32)}
                ),
                *good[2:],
            ]
        )
    )
    out = io.StringIO()
    err = subprocess.run(  # the console script itself, as a user runs it
        [
            str(Path(sys.executable).parent / "moodtune"),
            "ingest",
            str(catalog),
            "--model-dir",
            str(DEMO_BUNDLE),
            "--endpoint-url",
            local_aws.endpoint_url,
            "--table",
            songs_table.name,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out.write(err.stdout)
    assert err.returncode == 3, err.stderr
    assert "written" in err.stdout and "songs per dominant emotion" in err.stdout
    skipped = {}
    for text in err.stderr.splitlines():
        head, sep, rest = text.partition("catalog.jsonl:line ")
        if sep and head.startswith("skipped "):
            number = re.match(r"\d+", rest)
            assert number, text
            skipped[int(number.group())] = rest
    expected = {
        2: ": not valid JSON",
        4: "(x2): lyrics: Field required",
        5: f"({json.loads(good[0])['song_id']}): song_id: duplicate song_id (first on line 1)",
        6: ": not UTF-8",
        7: "(x7): lyrics: empty lyrics",
        8: "(x8): lyrics: 33,000 bytes, over the cap of 32,768 bytes",
        9: "(x9): lyrics: no lyric line left after removing section markers and blank lines",
        10: "(x10): the song is ",
    }
    assert sorted(skipped) == sorted(expected), err.stderr
    for number, words in expected.items():  # each reason on its own numbered line
        assert words in skipped[number], (number, skipped[number])
    assert "Traceback" not in err.stderr
    assert len(table_items(songs_table)) == 5


def test_cli_errors_are_one_line(local_aws: Any, songs_table: Any, tmp_path: Path, capsys: Any) -> None:
    assert run_cli(local_aws, songs_table, str(tmp_path / "missing.jsonl"))[0] == 1
    assert "no such catalog file" in capsys.readouterr().err
    catalog = tmp_path / "c.jsonl"
    shutil.copy(DEMO_CATALOG, catalog)
    status = cli.main(
        ["ingest", str(catalog), "--endpoint-url", local_aws.endpoint_url, "--table", "no-such-table"]
    )
    assert status == 1 and "no table 'no-such-table'" in capsys.readouterr().err
    status = cli.main(
        [
            "ingest",
            str(catalog),
            "--model-dir",
            str(tmp_path),
            "--endpoint-url",
            local_aws.endpoint_url,
            "--table",
            songs_table.name,
        ]
    )
    assert status == 1 and "manifest" in capsys.readouterr().err


def test_model_switch_check_gates_on_a_complete_catalog_and_prune_empties_a_version(
    local_aws: Any, songs_table: Any, tmp_path: Path, capsys: Any
) -> None:
    from infra import model_switch

    catalog = tmp_path / "catalog.jsonl"
    catalog.write_bytes(b"".join(DEMO_CATALOG.read_bytes().splitlines(keepends=True)[:40]))
    where = ["--endpoint-url", local_aws.endpoint_url, "--table", songs_table.name]
    check = ["check", "--model-dir", str(DEMO_BUNDLE), "--catalog", str(catalog), *where]
    assert model_switch.main(check) == 1
    assert "missing: 40" in capsys.readouterr().out

    assert run_cli(local_aws, songs_table, str(catalog), "--model-dir", str(DEMO_BUNDLE))[0] == 0
    assert model_switch.main(check) == 0
    assert "READY" in capsys.readouterr().out
    # The same catalog under other lyrics rules is stale: the version is not complete for those rules.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("INGEST_LINES_PER_CHUNK", "3")  # the demo bundle's chunking is 2
        assert model_switch.main(check) == 1
        assert "stale (catalog or rules changed): 40" in capsys.readouterr().out

    version = EmotionClassifier.from_bundle(DEMO_BUNDLE, threads=1).model_version
    assert model_switch.main(["prune", "--model-version", version, *where]) == 2  # no --yes
    assert model_switch.main(["prune", "--model-version", version, "--yes", *where]) == 0
    assert table_items(songs_table) == {}


def test_a_table_that_keeps_refusing_reads_is_a_one_line_error_to_run_again(
    local_aws: Any, songs_table: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    """BatchGetItem answers every key unprocessed (lasting throttling): after its retries the CLI says
    to run again, with no traceback, and nothing is half-written."""
    monkeypatch.setattr("moodtune.catalog.ingest.time.sleep", lambda s: None)
    opened = ingest_cli._songs_table

    def refusing_table(args: Any) -> Any:
        table = opened(args)

        def unprocessed(params: dict[str, Any], **_: Any) -> Any:
            request = json.loads(params["body"])["RequestItems"]
            http = type("Http", (), {"status_code": 200, "headers": {}})()
            return http, {"Responses": {table.name: []}, "UnprocessedKeys": request}

        table.meta.client.meta.events.register("before-call.dynamodb.BatchGetItem", unprocessed)
        return table

    monkeypatch.setattr(ingest_cli, "_songs_table", refusing_table)
    status, _ = run_cli(local_aws, songs_table, str(DEMO_CATALOG), "--model-dir", str(DEMO_BUNDLE))
    err = capsys.readouterr().err
    assert status == 1
    assert "BatchGetItem left keys unprocessed after 8 attempts" in err
    assert "run the same command again to resume" in err and "Traceback" not in err
    assert table_items(songs_table) == {}


def test_model_switch_check_leaves_out_songs_ingest_never_writes(
    local_aws: Any, songs_table: Any, tmp_path: Path, capsys: Any
) -> None:
    from infra import model_switch

    catalog = tmp_path / "catalog.jsonl"
    markers_only = {"song_id": "markers", "title": "t", "artist": "a", "lyrics": "[Chorus]\n(후렴)\n(x2)"}
    lines = DEMO_CATALOG.read_bytes().splitlines(keepends=True)[:5]
    catalog.write_bytes(b"".join([*lines, json.dumps(markers_only).encode() + b"\n"]))
    assert run_cli(local_aws, songs_table, str(catalog), "--model-dir", str(DEMO_BUNDLE))[0] == 3
    assert "markers" not in table_items(songs_table)
    check = ["check", "--model-dir", str(DEMO_BUNDLE), "--catalog", str(catalog)]
    where = ["--endpoint-url", local_aws.endpoint_url, "--table", songs_table.name]
    assert model_switch.main([*check, *where]) == 0
    out = capsys.readouterr().out
    assert "5 catalog songs" in out and "1 songs without a lyric line not counted" in out and "READY" in out


def test_a_bad_ingest_variable_is_a_one_line_error(
    local_aws: Any, songs_table: Any, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv("INGEST_WEIGHTING", "median")
    assert run_cli(local_aws, songs_table, str(DEMO_CATALOG))[0] == 1
    assert "INGEST_WEIGHTING" in capsys.readouterr().err
