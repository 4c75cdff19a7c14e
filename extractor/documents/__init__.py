"""Long documents: splitting into chunks, the plan (what fits one request, what one answer can hold),
the schema of one part, the context carried into later parts, running the parts and merging them back.

The namespace re-exports the user-facing helpers; the modules below import only from `sources`,
`schema`, `output` and the shared base, never from the client."""

from .chunking import DEFAULT_OVERLAP, Chunk, chunk_document, split_text
from .merge import Merged, merge_results

__all__ = ["DEFAULT_OVERLAP", "Chunk", "Merged", "chunk_document", "merge_results", "split_text"]
