"""(Re)generate the sample documents in `examples/`: invoices (PDF), receipts (images) and texts.

    python examples/make_samples.py            # rewrites examples/invoices, receipts, texts
    python examples/make_samples.py --out DIR  # somewhere else

Every company, person, address, number and account here is invented (phone numbers are from the
ranges reserved for fiction, e-mail domains end in `.example`, IBANs are the standard documentation
examples). The output is deterministic: the same fpdf2 and Pillow versions give byte-identical files.
`invoices/expected.jsonl` and `receipts/expected.jsonl` hold what a correct extraction gives for each
file, with the field names of the bundled `invoice` and `receipt` schemas.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from fpdf import FPDF
from PIL import Image, ImageDraw, ImageFont

HERE = Path(__file__).resolve().parent
CREATED = dt.datetime(2024, 6, 1, 9, 0, tzinfo=dt.timezone.utc)  # fixed: the PDFs are reproducible
CENT = Decimal("0.01")


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def number(value: Decimal) -> float | int:
    """A JSON number for an amount or quantity (an int when whole)."""
    return int(value) if value == value.to_integral_value() else float(value)


# --- invoices ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Party:
    name: str
    address: str
    tax_id: str | None = None
    email: str | None = None
    phone: str | None = None

    def expected(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "address": self.address,
            "tax_id": self.tax_id,
            "email": self.email,
            "phone": self.phone,
        }


@dataclass(frozen=True)
class Invoice:
    file: str
    number: str
    issued: dt.date
    due: dt.date | None
    seller: Party
    buyer: Party
    currency: str
    lines: list[tuple[str, Decimal, Decimal]]  # description, quantity, unit price
    tax_rate: Decimal | None
    purchase_order: str | None = None
    payment_terms: str | None = None
    iban: str | None = None
    notes: list[str] = field(default_factory=list)

    def amount(self, qty: Decimal, price: Decimal) -> Decimal:
        return money(qty * price)

    @property
    def subtotal(self) -> Decimal:
        return sum((self.amount(q, p) for _, q, p in self.lines), Decimal(0))

    @property
    def tax(self) -> Decimal | None:
        return None if self.tax_rate is None else money(self.subtotal * self.tax_rate)

    @property
    def total(self) -> Decimal:
        return self.subtotal + (self.tax or Decimal(0))

    def expected(self) -> dict[str, Any]:
        """The invoice as the bundled `invoice` schema describes it."""
        return {
            "invoice_number": self.number,
            "issue_date": self.issued.isoformat(),
            "due_date": self.due.isoformat() if self.due else None,
            "seller": self.seller.expected(),
            "buyer": self.buyer.expected(),
            "currency": self.currency,
            "line_items": [
                {"description": d, "quantity": number(q), "unit_price": number(p), "amount": number(self.amount(q, p))}
                for d, q, p in self.lines
            ],
            "subtotal": number(self.subtotal),
            "tax": None if self.tax is None else number(self.tax),
            "total": number(self.total),
            "purchase_order": self.purchase_order,
            "payment_terms": self.payment_terms,
            "iban": self.iban,
        }


def de_amount(value: Decimal) -> str:
    """1234.5 -> `1.234,50`"""
    return f"{value:,.2f}".replace(",", "_").replace(".", ",").replace("_", ".")


def en_amount(value: Decimal) -> str:
    return f"{value:,.2f}"


def new_pdf(title: str, author: str) -> FPDF:
    pdf = FPDF(format="A4")
    pdf.core_fonts_encoding = "windows-1252"  # core fonts with the euro sign and typographic quotes
    pdf.set_creation_date(CREATED)
    pdf.set_title(title)
    pdf.set_author(author)
    pdf.set_creator("examples/make_samples.py")
    pdf.set_margins(18, 18, 18)
    pdf.set_auto_page_break(auto=True, margin=22)
    return pdf


def kestrel(inv: Invoice) -> FPDF:
    """A German invoice in German: sender line, address window, amounts as `1.234,50 €`."""
    pdf = new_pdf(f"Rechnung {inv.number}", inv.seller.name)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 20)
    pdf.cell(0, 10, "Kestrel Design Studio", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 8)
    pdf.cell(0, 5, f"{inv.seller.name} · {inv.seller.address}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    pdf.set_font("Helvetica", "", 10)
    for line in (inv.buyer.name, *inv.buyer.address.split(", ")):
        pdf.cell(90, 5, line, new_x="LMARGIN", new_y="NEXT")
    pdf.set_xy(120, 40)
    facts = [
        ("Rechnungsnummer", inv.number),
        ("Rechnungsdatum", inv.issued.strftime("%d.%m.%Y")),
        ("Fällig am", inv.due.strftime("%d.%m.%Y") if inv.due else ""),
        ("Ihre USt-IdNr.", inv.buyer.tax_id or ""),
    ]
    for label, value in facts:
        pdf.set_x(120)
        pdf.cell(35, 5, label + ":")
        pdf.cell(0, 5, value, new_x="LMARGIN", new_y="NEXT")
    pdf.set_y(80)
    pdf.set_font("Helvetica", "B", 14)
    pdf.cell(0, 8, f"Rechnung {inv.number}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font("Helvetica", "B", 10)
    widths = (90, 20, 32, 32)
    for text, width, align in zip(("Leistung", "Menge", "Einzelpreis", "Betrag"), widths, "LRRR", strict=True):
        pdf.cell(width, 7, text, border="B", align=align)
    pdf.ln()
    pdf.set_font("Helvetica", "", 10)
    for description, qty, price in inv.lines:
        cells = (
            description,
            de_amount(qty).removesuffix(",00"),
            f"{de_amount(price)} €",
            f"{de_amount(qty * price)} €",
        )
        for text, width, align in zip(cells, widths, "LRRR", strict=True):
            pdf.cell(width, 7, text, align=align)
        pdf.ln()
    pdf.ln(3)
    tax = inv.tax or Decimal(0)
    totals = [
        ("Nettobetrag", inv.subtotal),
        (f"zzgl. MwSt. {number((inv.tax_rate or Decimal(0)) * 100)} %", tax),
        ("Gesamtbetrag", inv.total),
    ]
    for label, amount in totals:
        pdf.set_font("Helvetica", "B" if label == "Gesamtbetrag" else "", 10)
        pdf.cell(142, 6, label, align="R")
        pdf.cell(32, 6, f"{de_amount(amount)} €", align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(8)
    pdf.set_font("Helvetica", "", 10)
    pdf.multi_cell(
        0,
        5,
        f"{inv.payment_terms}. Bitte überweisen Sie den Betrag unter Angabe der Rechnungsnummer.",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.set_y(-45)
    pdf.set_font("Helvetica", "", 8)
    footer = [
        f"{inv.seller.name} · {inv.seller.address}",
        f"Tel. {inv.seller.phone} · {inv.seller.email} · USt-IdNr. {inv.seller.tax_id}",
        f"Beispielbank Berlin · IBAN {inv.iban} · BIC BEISDEBBXXX",
    ]
    for line in footer:
        pdf.cell(0, 4, line, align="C", new_x="LMARGIN", new_y="NEXT")
    return pdf


def harbour(inv: Invoice) -> FPDF:
    """A British invoice: coloured band, seller block on the right, a ruled table, amounts as `£1,234.50`."""
    pdf = new_pdf(f"Invoice {inv.number}", inv.seller.name)
    pdf.add_page()
    pdf.set_fill_color(24, 64, 96)
    pdf.rect(0, 0, 210, 28, style="F")
    pdf.set_text_color(255, 255, 255)
    pdf.set_font("Times", "B", 22)
    pdf.set_xy(18, 9)
    pdf.cell(0, 10, "HARBOUR & FINCH")
    pdf.set_text_color(0, 0, 0)
    pdf.set_font("Times", "", 10)
    pdf.set_xy(120, 34)
    seller = [inv.seller.name, *inv.seller.address.split(", "), inv.seller.phone, inv.seller.email]
    for line in (*seller, f"VAT Reg. No. {inv.seller.tax_id}"):
        pdf.set_x(120)
        pdf.cell(0, 5, line or "", new_x="LMARGIN", new_y="NEXT")
    pdf.set_xy(18, 34)
    pdf.set_font("Times", "B", 16)
    pdf.cell(0, 8, "TAX INVOICE", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Times", "", 10)
    pdf.cell(0, 5, "Bill to:", new_x="LMARGIN", new_y="NEXT")
    for line in (inv.buyer.name, *inv.buyer.address.split(", ")):
        pdf.cell(90, 5, line, new_x="LMARGIN", new_y="NEXT")
    pdf.set_y(82)
    facts = [
        ("Invoice no.", inv.number),
        ("Invoice date", f"{inv.issued.day} {inv.issued:%B %Y}"),
        ("Your order", inv.purchase_order or ""),
        ("Payment due", f"{inv.due.day} {inv.due:%B %Y}" if inv.due else ""),
    ]
    for label, value in facts:
        pdf.set_font("Times", "B", 10)
        pdf.cell(30, 6, label, border=1)
        pdf.set_font("Times", "", 10)
        pdf.cell(50, 6, value, border=1, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    widths = (94, 18, 31, 31)
    pdf.set_font("Times", "B", 10)
    pdf.set_fill_color(220, 228, 236)
    for text, width in zip(("Description", "Qty", "Unit price", "Net amount"), widths, strict=True):
        pdf.cell(width, 7, text, border=1, fill=True, align="C")
    pdf.ln()
    pdf.set_font("Times", "", 10)
    for description, qty, price in inv.lines:
        cells = (description, str(number(qty)), f"£{en_amount(price)}", f"£{en_amount(inv.amount(qty, price))}")
        for text, width, align in zip(cells, widths, "LCRR", strict=True):
            pdf.cell(width, 7, text, border=1, align=align)
        pdf.ln()
    totals = [
        ("Subtotal", inv.subtotal),
        (f"VAT @ {number((inv.tax_rate or Decimal(0)) * 100)}%", inv.tax or Decimal(0)),
        ("Total due (GBP)", inv.total),
    ]
    for label, amount in totals:
        pdf.set_font("Times", "B" if label.startswith("Total") else "", 10)
        pdf.cell(143, 7, label, border=1, align="R")
        pdf.cell(31, 7, f"£{en_amount(amount)}", border=1, align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(8)
    pdf.set_font("Times", "", 10)
    pdf.multi_cell(
        0,
        5,
        f"Terms: {inv.payment_terms}. Please pay by bank transfer to IBAN {inv.iban} (BIC NWBKGB2L).",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    for note in inv.notes:
        pdf.multi_cell(0, 5, note, new_x="LMARGIN", new_y="NEXT")
    return pdf


class PagedPDF(FPDF):
    """A PDF with a running footer: `Page N of M` and the invoice number."""

    footer_text = ""

    def footer(self) -> None:
        self.set_y(-15)
        self.set_font("Helvetica", "I", 8)
        self.cell(0, 5, f"{self.footer_text} - Page {self.page_no()} of {{nb}}", align="C")


def bluegum(inv: Invoice) -> FPDF:
    """An Australian tax invoice over two pages: many line items, the table header repeated, totals on page 2."""
    pdf = PagedPDF(format="A4")
    pdf.footer_text = f"Tax invoice {inv.number}"
    pdf.core_fonts_encoding = "windows-1252"
    pdf.set_creation_date(CREATED)
    pdf.set_title(f"Tax invoice {inv.number}")
    pdf.set_author(inv.seller.name)
    pdf.set_creator("examples/make_samples.py")
    pdf.set_margins(16, 16, 16)
    pdf.set_auto_page_break(auto=True, margin=24)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 18)
    pdf.cell(0, 9, inv.seller.name, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    for line in (inv.seller.address, f"ABN {inv.seller.tax_id}", f"{inv.seller.phone} | {inv.seller.email}"):
        pdf.cell(0, 5, line, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("Helvetica", "B", 14)
    pdf.cell(0, 8, "TAX INVOICE", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    left = [f"Customer: {inv.buyer.name}", inv.buyer.address, f"ABN {inv.buyer.tax_id}"]
    right = [
        f"Invoice number: {inv.number}",
        f"Issue date: {inv.issued.isoformat()}",
        f"Due date: {inv.due.isoformat() if inv.due else ''}",
        f"Customer PO: {inv.purchase_order}",
    ]
    for i in range(max(len(left), len(right))):
        pdf.cell(100, 5, left[i] if i < len(left) else "")
        pdf.cell(0, 5, right[i] if i < len(right) else "", new_x="LMARGIN", new_y="NEXT")
    pdf.cell(0, 6, "All amounts are in Australian dollars (AUD).", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    widths = (100, 18, 30, 30)

    def header() -> None:
        pdf.set_font("Helvetica", "B", 9)
        for text, width in zip(("Item", "Qty", "Rate", "Amount"), widths, strict=True):
            pdf.cell(width, 6, text, border="TB", align="L" if text == "Item" else "R")
        pdf.ln()
        pdf.set_font("Helvetica", "", 9)

    header()
    for description, qty, price in inv.lines:
        if pdf.will_page_break(6):
            pdf.add_page()
            header()
        cells = (description, str(number(qty)), f"${en_amount(price)}", f"${en_amount(inv.amount(qty, price))}")
        for text, width, align in zip(cells, widths, "LRRR", strict=True):
            pdf.cell(width, 6, text, align=align)
        pdf.ln()
    pdf.ln(4)
    totals = [
        ("Subtotal (excl. GST)", inv.subtotal),
        ("GST 10%", inv.tax or Decimal(0)),
        ("Total (incl. GST) AUD", inv.total),
    ]
    for label, amount in totals:
        pdf.set_font("Helvetica", "B" if label.startswith("Total") else "", 10)
        pdf.cell(148, 6, label, align="R")
        pdf.cell(30, 6, f"${en_amount(amount)}", align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    pdf.set_font("Helvetica", "", 9)
    pdf.multi_cell(
        0,
        5,
        f"{inv.payment_terms}. Pay by EFT to Bluegum Analytics Pty Ltd, BSB 062-000, Account 1234 5678.",
        new_x="LMARGIN",
        new_y="NEXT",
    )
    for note in inv.notes:
        pdf.multi_cell(0, 5, note, new_x="LMARGIN", new_y="NEXT")
    return pdf


def sierra(inv: Invoice) -> FPDF:
    """A plain American invoice: no tax line, terms `Net 30`, dates as `April 15, 2024`."""
    pdf = new_pdf(f"Invoice {inv.number}", inv.seller.name)
    pdf.add_page()
    pdf.set_font("Courier", "B", 16)
    pdf.cell(0, 8, "INVOICE", align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Courier", "", 10)
    pdf.cell(0, 5, f"# {inv.number}", align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    for line in (inv.seller.name, *inv.seller.address.split(", ", 2), inv.seller.phone, inv.seller.email):
        pdf.cell(0, 5, line or "", new_x="LMARGIN", new_y="NEXT")
    pdf.cell(0, 5, f"EIN {inv.seller.tax_id}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(5)
    pdf.cell(0, 5, "BILL TO", new_x="LMARGIN", new_y="NEXT")
    for line in (inv.buyer.name, *inv.buyer.address.split(", ", 1), inv.buyer.email):
        pdf.cell(0, 5, line or "", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(5)
    pdf.cell(0, 5, f"Date: {inv.issued:%B} {inv.issued.day}, {inv.issued.year}", new_x="LMARGIN", new_y="NEXT")
    if inv.due:
        pdf.cell(0, 5, f"Due:  {inv.due:%B} {inv.due.day}, {inv.due.year}", new_x="LMARGIN", new_y="NEXT")
    pdf.cell(0, 5, f"Terms: {inv.payment_terms}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    pdf.cell(0, 5, "-" * 78, new_x="LMARGIN", new_y="NEXT")
    for description, qty, price in inv.lines:
        pdf.cell(110, 5, f"{description} ({number(qty)} x ${en_amount(price)})")
        pdf.cell(0, 5, f"${en_amount(inv.amount(qty, price))}", align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.cell(0, 5, "-" * 78, new_x="LMARGIN", new_y="NEXT")
    pdf.cell(110, 5, "Subtotal")
    pdf.cell(0, 5, f"${en_amount(inv.subtotal)}", align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Courier", "B", 11)
    pdf.cell(110, 6, "TOTAL DUE (USD)")
    pdf.cell(0, 6, f"${en_amount(inv.total)}", align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Courier", "", 10)
    pdf.ln(6)
    for note in inv.notes:
        pdf.multi_cell(0, 5, note, new_x="LMARGIN", new_y="NEXT")
    return pdf


def bluegum_lines() -> list[tuple[str, Decimal, Decimal]]:
    """Weekly consulting blocks, licences and travel: enough lines to run onto a second page."""
    lines: list[tuple[str, Decimal, Decimal]] = []
    work = ["Data pipeline development", "Dashboard design", "Data quality review", "Forecast model tuning"]
    for week in range(1, 13):
        for i, task in enumerate(work[: 2 + week % 3]):
            hours = Decimal(6 + (week * 3 + i * 5) % 13)
            lines.append(
                (f"Week {week}: {task} (hours)", hours, Decimal("185.00") if i % 2 == 0 else Decimal("160.00"))
            )
    lines.append(("Analytics platform licence, 5 seats (monthly)", Decimal(2), Decimal("449.00")))
    lines.append(("Travel: Sydney - Newcastle return, site workshop", Decimal(1), Decimal("312.40")))
    return lines


INVOICES: list[tuple[Invoice, Callable[[Invoice], FPDF]]] = [
    (
        Invoice(
            file="kestrel-design-2024-0117.pdf",
            number="KDS-2024-0117",
            issued=dt.date(2024, 1, 17),
            due=dt.date(2024, 1, 31),
            seller=Party(
                "Kestrel Design Studio GmbH",
                "Gartenweg 12, 10115 Berlin, Deutschland",
                "DE123456789",
                "rechnung@kestrel-design.example",
                "+49 30 23125 417",
            ),
            buyer=Party("Lindqvist Möbel AG", "Hafenstraße 3, 20457 Hamburg", "DE987654321"),
            currency="EUR",
            lines=[
                ("Logo-Überarbeitung", Decimal(1), Decimal("1250.00")),
                ("Geschäftsausstattung (Visitenkarten, Briefbogen)", Decimal(1), Decimal("680.00")),
                ("Produktfotos, Nachbearbeitung", Decimal(24), Decimal("18.50")),
            ],
            tax_rate=Decimal("0.19"),
            payment_terms="Zahlbar innerhalb von 14 Tagen ohne Abzug",
            iban="DE89 3704 0044 0532 0130 00",
        ),
        kestrel,
    ),
    (
        Invoice(
            file="harbour-finch-HF-23-0042.pdf",
            number="HF/23/0042",
            issued=dt.date(2023, 11, 3),
            due=dt.date(2023, 12, 3),
            seller=Party(
                "Harbour & Finch Ltd",
                "Unit 4, Quayside Works, Bristol, BS1 6XX",
                "GB123456789",
                "accounts@harbourfinch.example",
                "020 7946 0321",
            ),
            buyer=Party("The Copper Kettle Tearoom", "18 Mill Lane, Bath, BA1 9ZZ"),
            currency="GBP",
            lines=[
                ("Earl Grey loose leaf tea, 1 kg", Decimal(6), Decimal("21.40")),
                ("Porcelain teapot, 6-cup, white", Decimal(4), Decimal("32.00")),
                ("Stoneware mugs, set of 12", Decimal(2), Decimal("54.90")),
                ("Delivery, next-day pallet", Decimal(1), Decimal("45.00")),
            ],
            tax_rate=Decimal("0.20"),
            purchase_order="PO-55821",
            payment_terms="30 days from invoice date",
            iban="GB29 NWBK 6016 1331 9268 19",
            notes=["Thank you for your business. Goods remain our property until paid in full."],
        ),
        harbour,
    ),
    (
        Invoice(
            file="bluegum-analytics-BGA-00981.pdf",
            number="BGA-00981",
            issued=dt.date(2024, 2, 9),
            due=dt.date(2024, 3, 1),
            seller=Party(
                "Bluegum Analytics Pty Ltd",
                "Level 3, 88 Wattle Street, Ultimo NSW 2007",
                "12 345 678 901",
                "billing@bluegum-analytics.example",
                "(02) 5550 1234",
            ),
            buyer=Party("Coastline Freight Co.", "7 Dock Road, Newcastle NSW 2300", "98 765 432 109"),
            currency="AUD",
            lines=bluegum_lines(),
            tax_rate=Decimal("0.10"),
            purchase_order="CF-PO-2024-118",
            payment_terms="Payment due within 21 days",
            notes=["Questions about this invoice? Email billing@bluegum-analytics.example quoting BGA-00981."],
        ),
        bluegum,
    ),
    (
        Invoice(
            file="sierra-vista-SV-7734.pdf",
            number="SV-7734",
            issued=dt.date(2024, 4, 15),
            due=dt.date(2024, 5, 15),
            seller=Party(
                "Sierra Vista Web Services LLC",
                "1180 Juniper Ave, Suite 210, Boulder, CO 80302",
                "12-3456789",
                "hello@sierravista.example",
                "(303) 555-0147",
            ),
            buyer=Party(
                "Maple Street Dental Clinic",
                "402 Maple St, Fort Collins, CO 80521",
                email="office@maple-dental.example",
            ),
            currency="USD",
            lines=[
                ("Website hosting, annual plan", Decimal(1), Decimal("540.00")),
                ("SSL certificate renewal", Decimal(1), Decimal("89.00")),
                ("Content updates (hours)", Decimal("3.5"), Decimal("95.00")),
            ],
            tax_rate=None,
            payment_terms="Net 30",
            notes=["Make checks payable to Sierra Vista Web Services LLC."],
        ),
        sierra,
    ),
]


def write_invoices(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for invoice, render in INVOICES:
        pdf = render(invoice)
        (folder / invoice.file).write_bytes(bytes(pdf.output()))
        lines.append(json.dumps({"file": invoice.file, "data": invoice.expected()}, ensure_ascii=False))
    (folder / "expected.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


# --- receipts -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Receipt:
    file: str
    image_format: str  # what the bytes are, whatever the file name says
    merchant: str
    address: str
    date: dt.date
    time: str
    currency: str
    symbol: str  # printed before amounts (the default font of Pillow has ASCII only: no € or £)
    date_format: str
    items: list[tuple[str, int, Decimal]]  # name, quantity, line price
    tax_rate: Decimal | None
    tax_included: bool
    payment: str  # as printed
    payment_method: str  # the receipt schema's enum

    @property
    def subtotal(self) -> Decimal:
        return sum((price for _, _, price in self.items), Decimal(0))

    @property
    def tax(self) -> Decimal | None:
        if self.tax_rate is None:
            return None
        if self.tax_included:  # VAT included in the prices: the part of the total that is tax
            return money(self.subtotal * self.tax_rate / (1 + self.tax_rate))
        return money(self.subtotal * self.tax_rate)

    @property
    def total(self) -> Decimal:
        return self.subtotal if self.tax_included else self.subtotal + (self.tax or Decimal(0))

    def expected(self) -> dict[str, Any]:
        return {
            "merchant": self.merchant,
            "merchant_address": self.address,
            "date": self.date.isoformat(),
            "time": self.time,
            "currency": self.currency,
            "items": [{"name": n, "quantity": q, "price": number(p)} for n, q, p in self.items],
            "subtotal": None if self.tax_included else number(self.subtotal),  # printed only when tax is added
            "tax": None if self.tax is None else number(self.tax),
            "tip": None,
            "total": number(self.total),
            "payment_method": self.payment_method,
        }


RECEIPTS = [
    Receipt(
        file="cafe-luna.png",
        image_format="PNG",
        merchant="Cafe Luna",
        address="Rua das Flores 21, 1200-195 Lisboa",
        date=dt.date(2024, 5, 14),
        time="08:42",
        currency="EUR",
        symbol="EUR ",
        date_format="%d-%m-%Y",
        items=[
            ("Flat white", 2, Decimal("6.40")),
            ("Pastel de nata", 3, Decimal("4.50")),
            ("Agua 50cl", 1, Decimal("1.20")),
        ],
        tax_rate=Decimal("0.23"),
        tax_included=True,
        payment="CARD  **** 4821",
        payment_method="card",
    ),
    Receipt(
        file="ironbark-hardware.jpg",
        image_format="JPEG",
        merchant="Ironbark Hardware",
        address="2210 Prairie Rd, Lincoln, NE 68502",
        date=dt.date(2024, 3, 16),
        time="14:05",
        currency="USD",
        symbol="$",
        date_format="%m/%d/%Y",
        items=[
            ("Wood screws 4x40, box of 100", 2, Decimal("15.98")),
            ("Claw hammer 16 oz", 1, Decimal("12.49")),
            ("Masking tape 48mm", 3, Decimal("11.97")),
            ("Sandpaper assortment", 1, Decimal("6.29")),
        ],
        tax_rate=Decimal("0.0725"),
        tax_included=False,
        payment="CASH",
        payment_method="cash",
    ),
    Receipt(
        file="rye-and-crumb.jpg",  # PNG bytes under a .jpg name: detection goes by the bytes
        image_format="PNG",
        merchant="Rye & Crumb Bakery",
        address="5 Station Parade, York YO24 9ZZ",
        date=dt.date(2024, 6, 28),
        time="17:31",
        currency="GBP",
        symbol="GBP ",
        date_format="%d/%m/%Y",
        items=[
            ("Sourdough loaf", 1, Decimal("4.20")),
            ("Cinnamon bun", 4, Decimal("11.00")),
            ("Oat flat white", 1, Decimal("3.35")),
        ],
        tax_rate=None,
        tax_included=True,
        payment="PAID BY PHONE (CONTACTLESS)",
        payment_method="mobile",
    ),
]


def draw_receipt(receipt: Receipt) -> Image.Image:
    """A till slip: centred header, item lines with right-aligned prices, totals, payment."""
    width, margin = 360, 18
    big, body = ImageFont.load_default(size=22), ImageFont.load_default(size=15)
    rows: list[tuple[str, str, Any, str]] = [  # left text, right text, font, alignment
        (receipt.merchant, "", big, "center"),
        (receipt.address, "", body, "center"),
        ("", "", body, "left"),
        (f"{receipt.date.strftime(receipt.date_format)}   {receipt.time}", "", body, "left"),
        ("RULE", "", body, "left"),
    ]
    for name, qty, price in receipt.items:
        rows.append((f"{qty} x {name}", f"{receipt.symbol}{price:.2f}", body, "left"))
    rows.append(("RULE", "", body, "left"))
    if not receipt.tax_included:
        rows.append(("SUBTOTAL", f"{receipt.symbol}{receipt.subtotal:.2f}", body, "left"))
        rows.append(
            (f"SALES TAX {receipt.tax_rate and receipt.tax_rate * 100:.2f}%", f"{receipt.tax:.2f}", body, "left")
        )
    rows.append(("TOTAL", f"{receipt.symbol}{receipt.total:.2f}", big, "left"))
    if receipt.tax_included and receipt.tax is not None:
        rows.append(
            (f"incl. IVA {receipt.tax_rate and receipt.tax_rate * 100:.0f}%", f"{receipt.tax:.2f}", body, "left")
        )
    rows += [("", "", body, "left"), (receipt.payment, "", body, "left"), ("Thank you!", "", body, "center")]
    line_height = 26
    image = Image.new("L", (width, margin * 2 + line_height * len(rows)), color=255)
    draw = ImageDraw.Draw(image)
    y = margin
    for left, right, font, align in rows:
        if left == "RULE":
            draw.line([(margin, y + line_height // 2), (width - margin, y + line_height // 2)], fill=0, width=1)
            y += line_height
            continue
        x = (width - draw.textlength(left, font=font)) / 2 if align == "center" else margin
        draw.text((x, y), left, font=font, fill=0)
        if right:
            draw.text((width - margin - draw.textlength(right, font=font), y), right, font=font, fill=0)
        y += line_height
    return image


def write_receipts(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for receipt in RECEIPTS:
        image = draw_receipt(receipt)
        if receipt.image_format == "JPEG":
            image.save(folder / receipt.file, format="JPEG", quality=80)
        else:
            image.save(folder / receipt.file, format="PNG", optimize=True)
        lines.append(json.dumps({"file": receipt.file, "data": receipt.expected()}, ensure_ascii=False))
    (folder / "expected.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


# --- texts ----------------------------------------------------------------------------------------

TEXTS = {
    "resume-ana-lima.md": """\
# Ana Lima

Data engineer · Lisbon, Portugal · ana.lima@mail.example · +351 21 000 0417
github.com/ana-lima-example

## Summary

Data engineer with seven years of experience building batch and streaming pipelines for retail
and logistics companies. Comfortable owning a platform end to end, from ingestion to dashboards.

## Experience

**Senior Data Engineer**, Tidewater Logistics, Lisbon — 2021-03 to present
- Moved nightly ETL from cron scripts to Airflow; failed runs went from weekly to rare.
- Built the shipment-events stream (Kafka, 40k events/s at peak) feeding live delivery ETAs.

**Data Engineer**, Pomar Retail, Porto — 2017-09 to 2021-02
- Designed the sales data warehouse (PostgreSQL, dbt) used by 60 analysts.

## Education

MSc Computer Science, Universidade Nova de Lisboa, 2015-2017

## Skills

Python, SQL, Airflow, dbt, Kafka, PostgreSQL, Terraform

## Languages

Portuguese (native), English (fluent), Spanish (good)
""",
    "resume-tomas-berg.txt": """\
TOMAS BERG
Field Service Technician
Umeå, Sweden | tomas.berg@post.example | +46 70 123 45 67

PROFILE
Certified technician for industrial refrigeration and heat pumps. Eleven years on the road
across northern Sweden; used to working alone at remote sites in winter.

WORK
2016 - now   Service Technician, Norrsken Kyl & Värme AB, Umeå
             Maintenance and repair of commercial heat pumps; on-call rotation lead since 2020.
2013 - 2016  Apprentice, then Technician, Fjällkyla Service, Skellefteå

EDUCATION
2011 - 2013  Refrigeration technology (YH), Umeå vocational college

CERTIFICATES
F-gas category I (EU 2015/2067), valid to 2027
""",
    "services-agreement.txt": """\
SERVICES AGREEMENT (EXCERPT)

This Services Agreement is made on 2 May 2024 between Quillmark Publishing Ltd, 14 Ink Row,
Leeds LS2 9ZZ ("the Customer"), and Sparrowhawk IT Services Ltd, 3 Beacon Court, Manchester
M1 9ZZ ("the Supplier").

1. Term. The Agreement takes effect on 1 June 2024 and runs for 24 months. It renews
   automatically for successive 12-month periods unless either party gives at least
   90 days' written notice before the end of the current term.

2. Fees. The Customer shall pay a monthly fee of GBP 2,400.00 plus VAT, invoiced in advance.

3. Governing law. This Agreement is governed by the laws of England and Wales.

Notices under this Agreement go to:
  For the Customer: Priya Raman, Operations Director, priya.raman@quillmark.example,
  0113 496 0288
  For the Supplier: Gareth Moss, Account Manager, gareth.moss@sparrowhawk-it.example,
  0161 496 0755

Signed for Quillmark Publishing Ltd: Priya Raman, Operations Director
Signed for Sparrowhawk IT Services Ltd: Helen Okafor, Managing Director
""",
}

NOTES = [
    {
        "id": "note-001",
        "text": "Call from Dev Patel (Orchard Lane Foods) about order 4471 - please ring back on 0117 496 0521.",
    },
    {
        "id": "note-002",
        "text": "Met Chloé Martin, buyer at Atelier Vert, at the trade fair. chloe.martin@ateliervert.example",
    },
    {
        "id": "note-003",
        "text": "New supplier contact: Sam Whitaker, logistics, Harbour & Finch Ltd, sam.w@harbourfinch.example",
    },
    {"id": "note-004", "text": "Reminder: renew the office lease before 30 September. No contact given."},
]


def write_texts(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in TEXTS.items():
        (folder / name).write_text(text, encoding="utf-8")
    notes = "".join(json.dumps(note, ensure_ascii=False) + "\n" for note in NOTES)
    (folder / "notes.jsonl").write_text(notes, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=HERE, help="where to write (default: examples/)")
    args = parser.parse_args(argv)
    write_invoices(args.out / "invoices")
    write_receipts(args.out / "receipts")
    write_texts(args.out / "texts")
    for path in sorted(p for p in args.out.glob("*/*") if p.parent.name in ("invoices", "receipts", "texts")):
        print(f"{path.relative_to(args.out)}  {path.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
