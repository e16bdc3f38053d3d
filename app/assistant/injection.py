"""`scan(text)`: prompt-injection patterns in text that other people wrote (OWASP LLM01).

What it looks for, by rule name:

- `override`: instructions to ignore, forget or replace previous instructions, rules or the system prompt;
  "new instructions:", "developer mode", "do anything now";
- `prompt_leak`: asking the model to reveal or repeat its system prompt or instructions;
- `addressed_to_ai`: text that speaks to the AI reading it ("note to the assistant", "if you are an AI");
- `roleplay`: "you are now ...", "from now on you", "pretend to be", "act as", "your new role";
- `fake_role`: chat-template and role markers (`system:` at a line start, `<|im_start|>`, `[INST]`, forged
  fence markers) that try to end the data and start instructions;
- `exfiltration`: send / forward / post something to an address or URL, or everything of a kind ("forward
  all emails"); URLs whose query carries data or placeholders; instructions to put data into a link;
- `markdown_image`: markdown or HTML images on a remote host (rendered, they leak the URL's data);
- `tool_call`: "call the function", JSON shaped like a tool call, code-like calls of actions;
- `destructive`: delete / wipe / erase all or everything, `drop table`, `rm -rf`, moving money;
- `hidden_characters`: zero-width, bidirectional-override and Unicode tag characters;
- `homoglyph`: words mixing Latin with Cyrillic or Greek letters ("ignore" spelt with a Cyrillic i);
- `hidden_markup`: HTML comments and CSS that hides text;
- `multilingual`: the override and role-play patterns in French, Spanish, Portuguese, Italian, German,
  Dutch, Russian, Chinese, Japanese and Korean;
- `obfuscated`: the key phrases spelled out with leetspeak, spaces, punctuation, homoglyphs, reversed or
  in ROT13;
- `encoded`: base64, or Unicode tag characters, that decode to text with any of the above;
- `payload_splitting`: an instruction split into quoted pieces to be joined, or instructions to join them.

Every rule is checked on the text as written (lower-cased, NFKC) and on a folded copy (invisible characters
dropped, look-alike letters mapped to Latin), so "ignore" with Cyrillic letters in it is found like
"ignore". False positives cost little (a flagged source is shown with a warning and never trusted); a
miss costs more.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

INVISIBLE = re.compile(
    "[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\U000e0000-\U000e007f]"
)
"""Zero-width characters, bidirectional controls and Unicode tag characters ("ASCII smuggling")."""

_CONFUSABLES = str.maketrans(
    # Cyrillic, Armenian, Greek and Latin letters that look like the Latin letter below each (escaped: the
    # look-alikes are unreadable in source).
    "\u0430\u0432\u0435\u0451\u043a\u043c\u043d\u043e\u0440\u0441\u0442\u0443\u0445\u0456\u0457\u0458"
    "\u0455\u0501\u051b\u051d\u04bb\u0261\u0578\u057d\u03b1\u03b2\u03b5\u03b7\u03b9\u03ba\u03bd\u03bf"
    "\u03c1\u03c4\u03c5\u03c7\u03b3\u03c9\u0131\u0142\u00f8\u017f",
    "abeekmhopctyxiijsdqwhgnuabenikvoptuxywilos",
)
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s",
                       "|": "i", "!": "i", "€": "e"})  # fmt: skip
_SCRIPTS = ("LATIN", "CYRILLIC", "GREEK")

MAX_SCAN_CHARS = 200_000
"""Text beyond this is not scanned (a source excerpt is far shorter)."""


@dataclass(frozen=True)
class Finding:
    rule: str
    """One of the rule names above."""
    excerpt: str
    """A few words around the match, on one line."""


def fold(text: str) -> str:
    """`text` lower-cased, NFKC-normalised, invisible characters dropped and look-alike letters mapped to
    Latin: what a person would read, for matching."""
    plain = INVISIBLE.sub("", unicodedata.normalize("NFKC", text))
    return plain.lower().translate(_CONFUSABLES)


def _squash(text: str) -> str:
    """Only the letters of `fold(text)`, leetspeak undone: "I g-n-0-r-3  a11" is "ignoreaii"."""
    return "".join(c for c in fold(text).translate(_LEET) if c.isalpha())


_I = re.IGNORECASE
_RULES: list[tuple[str, re.Pattern[str]]] = [
    ("override", re.compile(
        r"\b(ignore|disregard|forget|skip|override|bypass|neglect|drop|abandon|discard)\b[^.\n]{0,40}?"
        r"\b(previous|prior|above|earlier|preceding|all|any|your|the|these|those|system|original|initial|"
        r"existing|old|other)\b[^.\n]{0,30}?\b(instructions?|prompts?|rules?|directions?|guidelines?|"
        r"messages?|context|commands?|orders?|constraints?|programming|guardrails?|policies|policy)\b", _I)),
    ("override", re.compile(
        r"\bignore (all |everything |anything )?(previous|prior|above|before|that)\b", _I)),
    ("override", re.compile(
        r"\b(new|updated|revised|real|actual|additional|secret|hidden|priority) (system )?"
        r"(instructions?|orders|directives?|task)\s*[:\-]", _I)),
    ("override", re.compile(r"\bsystem (prompt|message|override|instruction)s?\b", _I)),
    ("override", re.compile(
        r"\b(developer|god|admin|debug|jailbreak|dan|unrestricted|unfiltered|sudo|maintenance) mode\b", _I)),
    ("override", re.compile(r"\b(do anything now|jailbr(oken|eak))\b", _I)),
    ("prompt_leak", re.compile(
        r"\b(reveal|print|show|repeat|output|display|tell me|leak|dump|write out|recite|list)\b[^.\n]{0,30}"
        r"\b(system prompt|hidden prompt|initial prompt|pre-?prompt|your (instructions|rules|prompt|"
        r"guidelines|configuration))", _I)),
    ("prompt_leak", re.compile(r"\b(repeat|print) (the |all )?(words|text|everything) (above|before)\b", _I)),
    ("addressed_to_ai", re.compile(
        r"\b(note|message|instructions?) (to|for) (the |any )?(ai|assistant|model|llm|chat ?bot|gpt|agent|"
        r"robbie|language model)\b", _I)),
    ("addressed_to_ai", re.compile(
        r"\bif you( are|'re) (an? )?(ai|assistant|llm|language model|chat ?bot|bot|agent|gpt)\b", _I)),
    ("addressed_to_ai", re.compile(
        r"\b(dear|hey|hi|hello|attention|to the) (ai|assistant|llm|chat ?bot|gpt|language model|ai agent)\b"
        r"", _I)),
    ("roleplay", re.compile(
        r"\byou are now (an?|the|my|in|acting|playing|called|named|known as|free|unrestricted|unfiltered|"
        r"jailbroken|dan|evil|no longer|operating|under)\b", _I)),
    ("roleplay", re.compile(
        r"\b(from now on|henceforth|going forward),? (you|your|ignore|always|only)\b", _I)),
    ("roleplay", re.compile(
        r"\b(act|behave|respond|answer|reply) as (if you (are|were) )?(an?|the|my)\b[^.\n]{0,30}"
        r"\b(ai|assistant|model|bot|hacker|admin|administrator|system|unrestricted|unfiltered|evil|dan)\b",
        _I)),
    ("roleplay", re.compile(r"\bpretend (to be|you are|you're|that you)\b", _I)),
    ("roleplay", re.compile(r"\brole-?play (as|that)\b", _I)),
    ("roleplay", re.compile(
        r"\byour (new|real|true) (role|name|persona|identity|task|job|goal|purpose)\b", _I)),
    ("roleplay", re.compile(
        r"\byou (must|will|shall) now\b|\byou are no longer\b|\bstay in character\b", _I)),
    ("fake_role", re.compile(r"(^|\n)\s*[#>*\[]*\s*(system|assistant|developer)\s*[\]:]", _I)),
    ("fake_role", re.compile(
        r"<\|?\s*(im_start|im_end|system|assistant|user|endoftext|eot_id|start_header_id|end_header_id)"
        r"\s*\|?>", _I)),
    ("fake_role", re.compile(
        r"\[/?(inst|sys|system)\]|<</?sys>>|</?(system|instructions?|admin|prompt)>", _I)),
    ("fake_role", re.compile(r"#{2,}\s*(system|instructions?|new instructions?|admin)\b", _I)),
    ("fake_role", re.compile(
        r"<<<|[^\s>][ \t]*>>>|\bend (of )?(source|data|document|context|email)\b\s*[-=>\]]", _I)),
    ("exfiltration", re.compile(
        r"\b(send|forward|email|e-mail|post|upload|leak|transmit|share|copy|bcc|submit|exfiltrate|relay)\b "
        r"(this|that|it|these|them|all|every|everything|the|your|my|his|her|their|a copy|a summary|a list)\b"
        r"[^\n]{0,80}?\b(to|at|on|via|into)\b[^\n]{0,20}?"
        r"([\w.+-]+@[\w-]+\.[\w.-]+|https?://|www\.|\b\w+\.(com|net|org|io|ru|cn|xyz)\b)", _I)),
    ("exfiltration", re.compile(
        r"\b(send|forward|email|e-mail|post|upload|leak|share|export|dump|exfiltrate|bcc)\b (me |us )?"
        r"(all|every|each|the entire|the whole|your|my|his|her|their)? ?(of )?(the )?(emails?|mails?|"
        r"messages?|contacts?|passwords?|files?|data|conversations?|notes?|tasks?|history|inbox|"
        r"credentials?|secrets?|api keys?|tokens?|calendar|address book|documents?|chat logs?)\b", _I)),
    ("exfiltration", re.compile(
        r"\b(include|append|add|put|encode|embed|insert)\b[^.\n]{0,60}\b(in|into|to|as)\b "
        r"(the |a |this |that )?"
        r"(url|link|image|query|querystring|query string|parameter|webhook)\b", _I)),
    ("exfiltration", re.compile(
        r"https?://[^\s)>\"']+\?[^\s)>\"']*\b(data|d|secret|token|key|password|pass|pwd|email|msg|content|"
        r"payload|info|text|conv|chat|history|exfil|leak|dump|notes|summary|ctx|prompt|creds?)=", _I)),
    ("exfiltration", re.compile(
        r"https?://[^\s)>\"']+(\{[^}\s]{1,40}\}|\[[A-Z_]{2,40}\]|\$[A-Z_]{2,40}|%7B)", _I)),
    ("markdown_image", re.compile(r"!\[[^\]\n]{0,200}\]\(\s*<?\s*(https?:)?//", _I)),
    ("markdown_image", re.compile(r"<img\b[^>]{0,200}\bsrc\s*=\s*['\"]?\s*(https?:)?//", _I)),
    ("markdown_image", re.compile(  # a reference-style image: ![x][ref] ... [ref]: https://...
        r"!\[[^\]\n]{0,200}\]\s*\[[^\]\n]{1,60}\][\s\S]{0,500}\[[^\]\n]{1,60}\]:\s*https?://", _I)),
    ("tool_call", re.compile(
        r"\b(call|invoke|execute|trigger|activate|use)\b (the |this |your )?([\w-]+ )?"
        r"(function|tool|plugin|action)s?\b", _I)),
    ("tool_call", re.compile(
        r"[\"'](tool|tool_name|tool_calls?|function|function_call|action|name|recipient_name|command)[\"']"
        r"\s*:\s*[\"'{\[][\s\S]{0,200}?[\"'](arguments|args|parameters|params|input|action_input|payload|"
        r"to|body)[\"']\s*:", _I)),
    ("tool_call", re.compile(
        r"[\"'](action|tool|function)[\"']\s*:\s*[\"'](send|delete|create|forward|write|update|remove|"
        r"transfer|post|email|wipe)", _I)),
    ("tool_call", re.compile(
        r"\b(send_?e?mail|send_message|delete_\w+|create_task|forward_\w+|write_crm|transfer_funds|"
        r"os\.system|subprocess\.\w+|exec|eval|functions\.\w+)\s*\(", _I)),
    ("destructive", re.compile(
        r"\b(delete|remove|erase|wipe|purge|destroy|clear|drop|trash|cancel)\s+(all|every|everything|each|"
        r"the entire|the whole|any and all)\b", _I)),
    ("destructive", re.compile(r"\bdrop table\b|\brm -rf\b|\bformat (the |your )?(disk|drive)\b", _I)),
    ("destructive", re.compile(
        r"\b(wire|transfer|send|pay)\b[^.\n]{0,20}\b(money|funds|payment|\$\s?\d|€\s?\d|\d+ ?(usd|eur|btc))",
        _I)),
    ("hidden_markup", re.compile(r"<!--[\s\S]{1,2000}?-->")),
    ("hidden_markup", re.compile(
        r"(display\s*:\s*none|font-size\s*:\s*0(px|pt|em)?\b|visibility\s*:\s*hidden|opacity\s*:\s*0(\.0+)?\b|"
        r"color\s*:\s*(white|#fff\b|#ffffff\b))", _I)),
]  # fmt: skip

_MULTILINGUAL: list[re.Pattern[str]] = [
    # French, Spanish, Portuguese, Italian, German, Dutch: "ignore the previous instructions"
    re.compile(r"\b(ignore[rz]?|oublie[rz]?|ignorez)\b[^.\n]{0,40}\b(instructions|consignes|règles)\b", _I),
    re.compile(
        r"\b(ignora|ignore|ignoren|olvida|olvide|olviden)\b[^.\n]{0,40}\b(instrucciones|reglas|indicaciones)\b",
        _I,
    ),
    re.compile(r"\b(ignore|ignora|esqueça|esqueca)\b[^.\n]{0,40}\b(instruções|instrucoes|regras)\b", _I),
    re.compile(r"\b(ignora|ignorate|dimentica)\b[^.\n]{0,40}\b(istruzioni|regole)\b", _I),
    re.compile(
        r"\b(ignorier\w*|vergiss|vergessen sie)\b[^.\n]{0,40}"
        r"\b(anweisungen|anleitungen|regeln|vorgaben|befehle)\b",
        _I,
    ),
    re.compile(r"\b(negeer|vergeet)\b[^.\n]{0,40}\b(instructies|regels|opdrachten)\b", _I),
    # Russian, Chinese, Japanese, Korean
    re.compile(
        r"(игнорируй|игнорируйте|проигнорируй|забудь|забудьте)[^.\n]{0,40}(инструкци|указани|правил)", _I
    ),
    re.compile(r"(忽略|无视|忘记|忽視|無視|忘記)[^。\n]{0,20}(指令|指示|说明|說明|規則|规则|提示)"),
    re.compile(r"(指示|命令|ルール|プロンプト)[^。\n]{0,10}(無視|忘れ)"),
    re.compile(r"(지시|명령|지침|규칙)[^.\n]{0,10}(무시|잊어)"),
    # "you are now" and "system prompt"
    re.compile(
        r"\b(tu es maintenant|vous êtes maintenant|ahora eres|agora você é|ora sei|du bist jetzt|"
        r"je bent nu)\b",
        _I,
    ),
    re.compile(r"(ты теперь|вы теперь|你现在是|你現在是|あなたは今|システムプロンプト|系统提示|系統提示)"),
    re.compile(r"\b(prompt (du )?système|prompt del sistema|system-?prompt|systemanweisung)\b", _I),
]

_KEY_PHRASES = (
    "ignorepreviousinstructions", "ignoreallpreviousinstructions", "ignoreallprevious", "ignoreprior",
    "ignoreyourinstructions", "ignoretheaboveinstructions", "ignoreallinstructions", "ignoretheabove",
    "disregardpreviousinstructions", "disregardallprevious", "disregardyourinstructions",
    "forgetallpreviousinstructions", "forgetyourinstructions", "forgetpreviousinstructions",
    "systemprompt", "developermode", "newinstructions", "revealyourinstructions", "deletealltasks",
    "deleteallnotes", "deleteallemails", "deleteeverything", "forwardallemails", "sendallemails",
    "youarenowdan", "doanythingnow",
)  # fmt: skip
_BASE64 = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{24,}={0,2}(?![A-Za-z0-9+/=])")
_QUOTED = re.compile(
    "[\"'\u201c\u201d\u2018\u2019`]([^\"'\u201c\u201d\u2018\u2019`\\n]{1,80})[\"'\u201c\u201d\u2018\u2019`]"
)
_JOIN_WORDS = re.compile(
    r"\b(concatenate|combine|join|merge|put together|assemble|glue|append)\b[^.\n]{0,40}"
    r"\b(strings?|parts?|pieces?|fragments?|variables?|halves|segments?|words?|letters?|chunks?|a and b|"
    r"x and y|them)\b",
    _I,
)
_ASSIGNMENT = re.compile(r"\b[a-z]\w{0,8}\s*=\s*[\"'\u201c\u2018`]", _I)
_CONCAT = re.compile(r"\b[a-z]\w{0,8}\s*\+\s*[a-z]\w{0,8}\b", _I)


def _excerpt(text: str, start: int, end: int, width: int = 40) -> str:
    piece = text[max(0, start - width) : end + width]
    return " ".join(INVISIBLE.sub("", piece).split())[: 2 * width + 60]


def _rule_hits(text: str) -> Iterator[Finding]:
    for rule, pattern in _RULES:
        found = pattern.search(text)
        if found:
            yield Finding(rule, _excerpt(text, found.start(), found.end()))
    for pattern in _MULTILINGUAL:
        found = pattern.search(text)
        if found:
            yield Finding("multilingual", _excerpt(text, found.start(), found.end()))


def _mixed_script_word(text: str) -> str | None:
    """The first word that mixes Latin letters with Cyrillic or Greek ones, if any."""
    for word in re.findall(r"[^\W\d_]{2,}", text):
        scripts: set[str] = set()
        for c in word:
            name = unicodedata.name(c, "")
            scripts.update(s for s in _SCRIPTS if name.startswith(s))
        if "LATIN" in scripts and len(scripts) > 1:
            return str(word)
    return None


def _decoded_base64(text: str) -> Iterator[str]:
    for blob in _BASE64.findall(text)[:20]:
        padded = blob + "=" * (-len(blob) % 4)
        try:
            raw = base64.b64decode(padded, validate=True)
        except (binascii.Error, ValueError):
            continue
        decoded = raw.decode("utf-8", "ignore")
        if decoded and sum(c.isprintable() or c.isspace() for c in decoded) / len(decoded) > 0.9:
            yield decoded


def _phrase(squashed: str) -> str | None:
    for phrase in _KEY_PHRASES:
        if phrase in squashed:
            return phrase
    return None


def scan(text: str) -> list[Finding]:
    """The injection findings in `text`, at most one per rule, in rule order; [] for clean text."""
    text = text[:MAX_SCAN_CHARS]
    if not text.strip():
        return []
    found: dict[str, Finding] = {}

    def add(findings: Iterable[Finding]) -> None:
        for f in findings:
            found.setdefault(f.rule, f)

    plain = unicodedata.normalize("NFKC", text)
    folded = fold(text)
    add(_rule_hits(plain))
    if folded != plain.lower():
        add(_rule_hits(folded))
    smuggled = "".join(chr(ord(c) - 0xE0000) for c in plain if 0xE0020 <= ord(c) <= 0xE007E)
    if smuggled:  # Unicode tag characters spell ASCII that screens do not show
        inner = scan(smuggled)
        if inner:
            add([Finding("encoded", f"tag characters hiding {inner[0].rule}: {inner[0].excerpt[:60]}")])
    hidden = INVISIBLE.search(plain)
    if hidden:
        add(
            [
                Finding(
                    "hidden_characters",
                    f"U+{ord(hidden.group()):04X} near: {_excerpt(plain, *hidden.span())}",
                )
            ]
        )
    mixed = _mixed_script_word(plain)
    if mixed:
        add([Finding("homoglyph", f"'{mixed}' mixes scripts")])
    squashed = _squash(text)
    phrase = _phrase(squashed) or _phrase(squashed[::-1]) or _phrase(_squash(codecs.encode(folded, "rot13")))
    if phrase:
        add([Finding("obfuscated", f"spells '{phrase}'")])
    for decoded in _decoded_base64(plain):
        inner = scan(decoded) if len(decoded) < len(text) else []
        if inner:
            add([Finding("encoded", f"base64 hiding {inner[0].rule}: {inner[0].excerpt[:60]}")])
            break
    pieces = _QUOTED.findall(plain)
    if len(pieces) >= 2:
        joined = "".join(pieces)
        phrase = _phrase(_squash(joined))
        if phrase or any(f.rule in {"override", "exfiltration", "destructive"} for f in _rule_hits(joined)):
            add([Finding("payload_splitting", f"quoted pieces join into: {' '.join(joined.split())[:80]}")])
    joins = _JOIN_WORDS.search(plain)
    if joins and (len(_ASSIGNMENT.findall(plain)) >= 2 or _CONCAT.search(plain)):
        add([Finding("payload_splitting", _excerpt(plain, joins.start(), joins.end()))])
    return list(found.values())


def scan_joined(texts: Iterable[str]) -> list[Finding]:
    """Findings that only appear when several texts are read together (an instruction split across two
    mails): the key phrases in the letters of all of them joined, each text's own findings left out."""
    parts = [t[:MAX_SCAN_CHARS] for t in texts]
    if len(parts) < 2:
        return []
    alone = {p for t in parts if (p := _phrase(_squash(t)))}
    phrase = _phrase(_squash(" ".join(parts)))
    if phrase and phrase not in alone:
        return [Finding("payload_splitting", f"the sources together spell '{phrase}'")]
    return []
