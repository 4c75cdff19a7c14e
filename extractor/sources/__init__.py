"""Sources: PDFs, images, text and HTML files read into pages of text and images, turned into chat content
parts, measured in tokens, and checked against the text (evidence). Splitting long documents and
merging their parts back: `extractor.documents`.

Everything here is synchronous and local: nothing is fetched from the network.
"""

from ._pages import PageOffsets, PageSelection, select_pages
from ._sniff import file_kind
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
from .page import Page
from .parts import Source, to_parts
from .pdf import PDF_ENGINES, ImageMode, PdfEngine, file_parser_plugin, pdf_file_part
from .text import html_to_text
from .tokens import IMAGE_TOKENS, estimate_document_tokens, estimate_tokens, typical_tokens

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_MAX_FILE_BYTES",
    "DEFAULT_MAX_SIDE",
    "DEFAULT_THRESHOLD",
    "IMAGE_TOKENS",
    "PAGE_SEPARATOR",
    "PDF_ENGINES",
    "Detail",
    "Document",
    "DocumentKind",
    "Evidence",
    "EvidenceMethod",
    "Image",
    "ImageMode",
    "LoadLimits",
    "Page",
    "PageOffsets",
    "PageSelection",
    "PdfEngine",
    "Source",
    "SourceText",
    "estimate_document_tokens",
    "estimate_tokens",
    "evidence_texts",
    "file_kind",
    "file_parser_plugin",
    "find_evidence",
    "find_evidence_in",
    "html_to_text",
    "number_forms",
    "pdf_file_part",
    "read_file",
    "read_head",
    "select_pages",
    "to_parts",
    "typical_tokens",
]
