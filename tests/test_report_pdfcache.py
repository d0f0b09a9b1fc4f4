"""Printed pages kept per host (costmodel.reporting.pdfcache): the same page is printed once,
another page is printed anew, and a damaged entry is printed again."""

import pytest

from costmodel.reporting import export, pdfcache

PAGE = "<!DOCTYPE html><html><head><meta charset='utf-8'></head><body><h1>Report</h1><p>{}</p></body></html>"


@pytest.fixture
def pdf_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COSTMODEL_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("COSTMODEL_CACHE", raising=False)
    return tmp_path / pdfcache.CACHE_KIND


def _no_printing(monkeypatch):
    import weasyprint

    def refuse(*_args, **_kwargs):
        raise AssertionError("printed again")

    monkeypatch.setattr(weasyprint, "HTML", refuse)


def test_a_page_is_printed_once_and_read_back(pdf_cache, monkeypatch):
    first = export.to_pdf(PAGE.format("one"))
    assert first.startswith(b"%PDF") and len(list(pdf_cache.iterdir())) == 1
    _no_printing(monkeypatch)
    assert export.to_pdf(PAGE.format("one")) == first
    with pytest.raises(AssertionError, match="printed again"):
        export.to_pdf(PAGE.format("two"))  # another page: another key
    with pytest.raises(AssertionError, match="printed again"):
        export.to_pdf(PAGE.format("one"), cached=False)


def test_a_damaged_entry_is_printed_again(pdf_cache):
    first = export.to_pdf(PAGE.format("one"))
    (entry,) = pdf_cache.iterdir()
    entry.write_text("JVBERi0")  # "%PDF-" cut short
    assert export.to_pdf(PAGE.format("one")) == first


def test_caching_off_keeps_nothing(pdf_cache, monkeypatch):
    monkeypatch.setenv("COSTMODEL_CACHE", "0")
    assert export.to_pdf(PAGE.format("one")).startswith(b"%PDF")
    assert not pdf_cache.exists()
