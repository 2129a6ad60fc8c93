"""The second opinion's request for a dataset row: the facet prompt FIRST, then the conversation.

`dataset create` asks the labeller with the wrapper messages and the trace, then the facet prompt
last. The audit re-words the instruction and puts the facet prompt (between `<facet_prompt>` tags)
before the conversation: a different request, so it never shares a label cache entry with the
label it checks, even when the same model answers.
"""

from __future__ import annotations

from pathlib import Path

from facetopt.clients.llm.client import ChatRequest, Endpoint
from facetopt.clients.local.store import LocalStore
from facetopt.clients.prompt_file import FacetPrompt, load_prompt_file, render_messages
from facetopt.domain.dataset import DatasetRow
from facetopt.errors import NotFoundError

AUDIT_INSTRUCTION = (
    "You are checking a ground-truth label for one facet of a conversation. The facet's instructions "
    "come first, between <facet_prompt> tags; the conversation follows. Apply those instructions to "
    "the conversation exactly as written and reply with the facet value only, in the form they ask "
    "for, including their own answer for when nothing applies."
)


def load_audit_prompts(prompt_path: Path, output_root: Path) -> tuple[dict[str, FacetPrompt], Path]:
    """The facets' prompts: the prompt file, else the newest `dataset create` run's facet_prompt.yaml."""
    from facetopt.services.bootstrap import latest_run_prompt

    path = prompt_path
    if not path.exists():
        try:
            path = latest_run_prompt(output_root)
        except NotFoundError:
            raise NotFoundError(
                f"no prompt file at {prompt_path} and no dataset run under {output_root}",
                hint="the audit asks each facet's prompt again: pass --prompt-file, or run "
                "`facetopt bootstrap` in this --output-root",
            ) from None
    document = load_prompt_file(path)
    return {f.facet_name.casefold(): f for f in document.facets}, path


def prompt_for_row(
    row: DatasetRow, facets: dict[str, FacetPrompt], history: dict[str, str | None]
) -> tuple[FacetPrompt | None, bool]:
    """The prompt that labelled the row: the prompt file's facet, with the row's own prompt version
    from the store's prompt history when it differs. (prompt, True when the row's version was found
    or is the file's)."""
    facet = facets.get(row.facet_name.casefold())
    if facet is None:
        return None, False
    sha = str(row.metadata.get("facet_prompt_sha256") or "")
    if not sha or sha == facet.prompt_sha256:
        return facet, True
    text = history.get(sha)
    if not text:
        return facet, False
    own = facet.model_copy(
        update={"suffix_messages": [[{"role": "user", "content": text}]], "prompt_sha256": sha}
    )
    return own, True


def prompt_history(store_path: Path, shas: set[str]) -> dict[str, str | None]:
    if not shas or not store_path.exists():
        return {}
    with LocalStore(store_path, read_only=True) as store:
        return {sha: store.prompt_text(sha) for sha in shas}


def audit_messages(facet: FacetPrompt, text: str) -> list[dict]:
    return [
        {"role": "system", "content": AUDIT_INSTRUCTION},
        {"role": "user", "content": f"<facet_prompt>\n{facet.prompt_text}\n</facet_prompt>"},
        *render_messages(facet, text),
    ]


def audit_request(facet: FacetPrompt, row: DatasetRow, endpoint: Endpoint, max_tokens: int) -> ChatRequest:
    text = str(row.input.get("preprocessed_text") or "")
    return ChatRequest.build(endpoint, audit_messages(facet, text), max_tokens=max_tokens)
