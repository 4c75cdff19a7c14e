"""Runs over many inputs: the paced runner behind `extract_many`, one budget, the loader of files, the
JSONL sink and the OUT line's format, provider Batch APIs and Ray Data.

Import from the modules (`extractor.runs.runner`, `extractor.runs.sink`, ...): this package's own
namespace stays empty so that importing one part never imports the rest."""
