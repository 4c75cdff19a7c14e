"""Sources: PDFs, images, text and HTML files read into pages of text and images, turned into chat content
parts, split into chunks, merged back, and checked against the text (evidence).

Everything here is synchronous and local: nothing is fetched from the network.
"""

from ._pages import PageOffsets, PageSelection, select_pages
from ._sniff import file_kind
from .chunking import (
    DEFAULT_OVERLAP,
    IMAGE_TOKENS,
    Chunk,
    chunk_document,
    estimate_document_tokens,
    estimate_tokens,
    split_text,
    typical_tokens,
)
from .document import PAGE_SEPARATOR, Document, DocumentKind
from .evidence import (
    DEFAULT_THRESHOLD,
    Evidence,
    EvidenceMethod,
    SourceText,
    evidence_texts,
    find_evidence,
    find_evidence_in,
    number_forms,
)
from .files import DEFAULT_MAX_FILE_BYTES, read_file, read_head
from .image import DEFAULT_MAX_SIDE, Detail, Image
from .limits import DEFAULT_LIMITS, LoadLimits
from .merge import Merged, merge_results
from .page import Page
from .parts import Source, to_parts
from .pdf import PDF_ENGINES, ImageMode, PdfEngine, file_parser_plugin, pdf_file_part
from .text import html_to_text

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_MAX_FILE_BYTES",
    "DEFAULT_MAX_SIDE",
    "DEFAULT_OVERLAP",
    "DEFAULT_THRESHOLD",
    "IMAGE_TOKENS",
    "PAGE_SEPARATOR",
    "PDF_ENGINES",
    "Chunk",
    "Detail",
    "Document",
    "DocumentKind",
    "Evidence",
    "EvidenceMethod",
    "Image",
    "ImageMode",
    "LoadLimits",
    "Merged",
    "Page",
    "PageOffsets",
    "PageSelection",
    "PdfEngine",
    "Source",
    "SourceText",
    "chunk_document",
    "estimate_document_tokens",
    "estimate_tokens",
    "evidence_texts",
    "file_kind",
    "file_parser_plugin",
    "find_evidence",
    "find_evidence_in",
    "html_to_text",
    "merge_results",
    "number_forms",
    "pdf_file_part",
    "read_file",
    "read_head",
    "select_pages",
    "split_text",
    "to_parts",
    "typical_tokens",
]
