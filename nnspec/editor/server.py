"""``nnspec lsp``: the language server, LSP over stdio (pygls).

Diagnostics are nnspec's own: as the user types (after a short pause), the document is checked
without shapes first (no torch: fast), published, and then, when that passed, checked with
shapes on a worker thread (torch is imported there the first time) and published again.  The
event loop never waits for a check, so hover and completion stay responsive; a result for a
text the user has since changed is dropped.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer

from nnspec import __version__
from nnspec.editor import analysis as A
from nnspec.editor import features
from nnspec.errors import Problem, format_path

DEBOUNCE_S = 0.3
KINDS = {"layer": lsp.CompletionItemKind.Class, "op": lsp.CompletionItemKind.Function,
         "block": lsp.CompletionItemKind.Module, "argument": lsp.CompletionItemKind.Property,
         "section": lsp.CompletionItemKind.Field, "variable": lsp.CompletionItemKind.Variable,
         "value": lsp.CompletionItemKind.Value, "keyword": lsp.CompletionItemKind.Keyword}


class SpecServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("nnspec", __version__,
                         text_document_sync_kind=lsp.TextDocumentSyncKind.Full)
        self.analyses: dict[str, A.Analysis] = {}
        self.versions: dict[str, int] = {}
        self.timers: dict[str, threading.Timer] = {}
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nnspec-check")
        self.loop: asyncio.AbstractEventLoop | None = None
        self.lock = threading.Lock()

    # -- checking --------------------------------------------------------------------------
    def schedule(self, uri: str, text: str, version: int, delay: float = DEBOUNCE_S) -> None:
        self.loop = self.loop or asyncio.get_running_loop()
        with self.lock:
            self.versions[uri] = version
            old = self.timers.pop(uri, None)
            if old:
                old.cancel()
            timer = threading.Timer(delay, lambda: self.worker.submit(
                self.check, uri, text, version))
            timer.daemon = True
            self.timers[uri] = timer
        timer.start()

    def current(self, uri: str, version: int) -> bool:
        with self.lock:
            return self.versions.get(uri) == version

    def check(self, uri: str, text: str, version: int) -> None:
        if not self.current(uri, version):
            return
        file = _path(uri)
        quick = A.check(text, file)
        self.keep(uri, version, quick, text)
        if quick.has_errors or not self.current(uri, version):
            return
        self.keep(uri, version, A.infer(quick), text)

    def keep(self, uri: str, version: int, result: A.Analysis, text: str) -> None:
        if not self.current(uri, version):
            return
        with self.lock:
            self.analyses[uri] = result
        params = lsp.PublishDiagnosticsParams(uri, [_diagnostic(p, text, result.file)
                                                    for p in result.problems], version)
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.text_document_publish_diagnostics, params)

    def analysis(self, uri: str) -> A.Analysis | None:
        with self.lock:
            return self.analyses.get(uri)


def _path(uri: str) -> str:
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return uri
    path = Path(unquote(parsed.path))
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _diagnostic(problem: Problem, text: str, file: str) -> lsp.Diagnostic:
    here = problem.location.file == file and problem.location.line > 0
    line = problem.location.line - 1 if here else 0
    column = max(problem.location.column - 1, 0) if here else 0
    end = features.token_end(text, line, column)
    where = f"{format_path(problem.path)}: " if problem.path else ""
    message = f"{where}{problem.message}" + (f" ({problem.hint})" if problem.hint else "")
    severity = (lsp.DiagnosticSeverity.Error if problem.is_error
                else lsp.DiagnosticSeverity.Warning)
    return lsp.Diagnostic(lsp.Range(lsp.Position(line, column), lsp.Position(line, end)),
                          message, severity=severity, source="nnspec")


server = SpecServer()


@server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
def did_open(ls: SpecServer, params: lsp.DidOpenTextDocumentParams) -> None:
    doc = params.text_document
    ls.schedule(doc.uri, doc.text, doc.version, delay=0)


@server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
def did_change(ls: SpecServer, params: lsp.DidChangeTextDocumentParams) -> None:
    doc = ls.workspace.get_text_document(params.text_document.uri)
    ls.schedule(doc.uri, doc.source, params.text_document.version)


@server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
def did_save(ls: SpecServer, params: lsp.DidSaveTextDocumentParams) -> None:
    doc = ls.workspace.get_text_document(params.text_document.uri)
    ls.schedule(doc.uri, doc.source, (doc.version or 0), delay=0)


@server.feature(lsp.TEXT_DOCUMENT_DID_CLOSE)
def did_close(ls: SpecServer, params: lsp.DidCloseTextDocumentParams) -> None:
    with ls.lock:
        ls.analyses.pop(params.text_document.uri, None)
        ls.versions.pop(params.text_document.uri, None)


@server.feature(lsp.TEXT_DOCUMENT_HOVER)
def hover(ls: SpecServer, params: lsp.HoverParams) -> lsp.Hover | None:
    doc = ls.workspace.get_text_document(params.text_document.uri)
    pos = params.position
    text = features.hover(doc.source, pos.line, pos.character, ls.analysis(doc.uri))
    if not text:
        return None
    return lsp.Hover(lsp.MarkupContent(lsp.MarkupKind.Markdown, text))


@server.feature(lsp.TEXT_DOCUMENT_COMPLETION,
                lsp.CompletionOptions(trigger_characters=["{", ",", " ", "$", "-"]))
def completion(ls: SpecServer, params: lsp.CompletionParams) -> lsp.CompletionList:
    doc = ls.workspace.get_text_document(params.text_document.uri)
    pos = params.position
    items = features.complete(doc.source, pos.line, pos.character, ls.analysis(doc.uri))
    return lsp.CompletionList(False, [_item(i) for i in items])


def _item(item: features.Item) -> lsp.CompletionItem:
    return lsp.CompletionItem(
        item.label, kind=KINDS.get(item.kind, lsp.CompletionItemKind.Text), detail=item.detail,
        documentation=lsp.MarkupContent(lsp.MarkupKind.Markdown, item.doc) if item.doc else None,
        insert_text=item.insert,
        insert_text_format=lsp.InsertTextFormat.Snippet if item.snippet
        else lsp.InsertTextFormat.PlainText)


@server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
def definition(ls: SpecServer, params: lsp.DefinitionParams) -> lsp.Location | None:
    doc = ls.workspace.get_text_document(params.text_document.uri)
    pos = params.position
    found = features.definition(doc.source, pos.line, pos.character, ls.analysis(doc.uri))
    if found is None:
        return None
    line, column = found
    end = features.token_end(doc.source, line, column)
    return lsp.Location(doc.uri, lsp.Range(lsp.Position(line, column), lsp.Position(line, end)))


def serve(stdin: Any = None, stdout: Any = None) -> None:
    server.start_io(stdin, stdout)
