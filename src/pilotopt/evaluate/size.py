"""Size of an artifact for the offline evaluation: bytes on disk, gzip size, parameter counts.

The format knowledge lives in pilotopt.artifacts (one module per kind; files.py for bytes, gzip
and the content digest); this module is the evaluation's name for it. When the artifact cannot
be counted, the producer's `record` ("params", "nonzero_params") is used, else the counts are null."""

from pilotopt.artifacts import (artifact_bytes, artifact_digest, artifact_files, count_params, gzip_bytes,
                                params_from_record, size_info)

__all__ = ["artifact_bytes", "artifact_digest", "artifact_files", "count_params", "gzip_bytes", "params_from_record",
           "size_info"]
