"""The assistant: grounded answers from the person's own memory, in a chosen personality's voice.

- `personalities`: Robbie and the mentors (built in, `builtin.py`), and a person's own TOML files;
- `retrieval` and `prompt`: the sources for a question (hybrid search within the personality's memory
  scope) and the prompt that fences them, with citations read back from the answer;
- `gatekeeper` (with `injection` and `pii`): other people's text is data, never instructions; what the
  model proposes waits for the person;
- `mood`: how the day looks, from the workload (pure), for the status bar and the tone;
- `ask`: `Assistant.ask`, streamed, ending in one `AnswerDone` or `AnswerFailed`.

Nothing here imports Textual or the node, and nothing loads a model at import time. The names below load
their module on first use, so importing one pure module (`prompt`, `personalities`, as the node does to
build the same prompt as the laptop) does not load the laptop's store through `ask` and `retrieval`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aurora.app.lazy import lazy_getattr

if TYPE_CHECKING:
    from aurora.app.assistant.ask import (
        LOCAL_MARKER,
        MAX_QUESTION_BYTES,
        AnswerDone,
        AnswerEvent,
        AnswerFailed,
        AnswerText,
        Assistant,
    )
    from aurora.app.assistant.gatekeeper import (
        Finding,
        PendingAction,
        PiiFinding,
        ProposedAction,
        fence,
        new_boundary,
        pii_check,
        review,
        scan,
    )
    from aurora.app.assistant.mood import Mood, SyncHealth, Workload, derive_mood, workload_from
    from aurora.app.assistant.personalities import (
        Broken,
        Personality,
        export_builtin,
        find_personality,
        load_personalities,
        user_personalities_dir,
    )
    from aurora.app.assistant.prompt import NO_SUPPORT, build_prompt, citations, no_support, suggestions
    from aurora.app.assistant.retrieval import retrieve
    from aurora.app.assistant.sources import Source

_HOME = {
    "LOCAL_MARKER": "ask",
    "MAX_QUESTION_BYTES": "ask",
    "AnswerDone": "ask",
    "AnswerEvent": "ask",
    "AnswerFailed": "ask",
    "AnswerText": "ask",
    "Assistant": "ask",
    "Finding": "gatekeeper",
    "PendingAction": "gatekeeper",
    "PiiFinding": "gatekeeper",
    "ProposedAction": "gatekeeper",
    "fence": "gatekeeper",
    "new_boundary": "gatekeeper",
    "pii_check": "gatekeeper",
    "review": "gatekeeper",
    "scan": "gatekeeper",
    "Mood": "mood",
    "SyncHealth": "mood",
    "Workload": "mood",
    "derive_mood": "mood",
    "workload_from": "mood",
    "Broken": "personalities",
    "Personality": "personalities",
    "export_builtin": "personalities",
    "find_personality": "personalities",
    "load_personalities": "personalities",
    "user_personalities_dir": "personalities",
    "NO_SUPPORT": "prompt",
    "build_prompt": "prompt",
    "citations": "prompt",
    "no_support": "prompt",
    "suggestions": "prompt",
    "retrieve": "retrieval",
    "Source": "sources",
}


__getattr__ = lazy_getattr(__name__, _HOME, globals())


__all__ = [
    "LOCAL_MARKER",
    "MAX_QUESTION_BYTES",
    "NO_SUPPORT",
    "AnswerDone",
    "AnswerEvent",
    "AnswerFailed",
    "AnswerText",
    "Assistant",
    "Broken",
    "Finding",
    "Mood",
    "PendingAction",
    "Personality",
    "PiiFinding",
    "ProposedAction",
    "Source",
    "SyncHealth",
    "Workload",
    "build_prompt",
    "citations",
    "derive_mood",
    "export_builtin",
    "fence",
    "find_personality",
    "load_personalities",
    "new_boundary",
    "no_support",
    "pii_check",
    "retrieve",
    "review",
    "scan",
    "suggestions",
    "user_personalities_dir",
    "workload_from",
]
