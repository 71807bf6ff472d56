"""catalog: songs and their emotion vectors — lyrics rules, ingestion, SongsTable, the in-memory catalog."""

from moodtune._exports import lazy_exports

_EXPORTS = {
    "ScoredSong": "songs",
    "Catalog": "songs",
    "CatalogColumns": "songs",
    "CatalogCache": "cache",
    "SnapshotError": "snapshot",
    "SnapshotSource": "snapshot",
    "MemoryObjects": "snapshot",
    "publish_snapshot": "snapshot",
    "S3Objects": "objects",
    "read_columns": "store",
    "load_catalog": "store",
    "write_songs": "store",
    "LyricsOptions": "lyrics",
    "prepare_lyrics": "lyrics",
    "average_chunks": "lyrics",
    "CatalogSong": "ingest",
    "IngestReport": "ingest",
    "IngestSettings": "ingest",
    "SongScorer": "ingest",
    "ingest_file": "ingest",
    "score_songs": "ingest",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
