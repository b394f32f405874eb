"""What one dataset row becomes in each export format, and the checks every exported chat must pass.

Pure functions of a row (the split columns as a dict), the dataset's recipe and
the templates; no files and no Spark, so each format can be tested on its own.

A row's ``text`` is ``<question>\\n\\n<description>\\n\\n<prefix><dollars>.00`` in
train and validation, and stops right after ``<prefix>`` in test. The
description (title and contents) may itself contain the prefix: the price line is
the LAST prefix of a train text (the course cut test prompts at the first one, so
such a test text already stops inside its description).
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass

from pricecurate.errors import UserError
from pricecurate.rules.recipe import Recipe

CHAT_JSONL = "chat-jsonl"
MESSAGES = "messages"
PROMPT_COMPLETION = "prompt-completion"
FORMATS = (CHAT_JSONL, MESSAGES, PROMPT_COMPLETION)
SUFFIX = {CHAT_JSONL: "jsonl", MESSAGES: "parquet", PROMPT_COMPLETION: "parquet"}

ROLES = ("system", "user", "assistant")
DEFAULT_SYSTEM = "You estimate prices of items. Reply only with the price, no explanation"
DEFAULT_USER = "{question}\n\n{description}"
DEFAULT_ASSISTANT = "{prefix}{price}"
# The course asks the chat model for the price without "to the nearest dollar": its answer is the exact price.
NEAREST_DOLLAR = " to the nearest dollar"
MAX_LINE_BYTES = 1024 * 1024  # hosted fine-tuning services cap a JSONL example's size; 1 MiB is far above any row

# What a template may use, each a string.
PLACEHOLDERS = {
    "question": "the recipe's question without ' to the nearest dollar'",
    "full_question": "the recipe's question as the prompt has it",
    "description": "the product text: title and contents",
    "prefix": "the recipe's price prefix, e.g. 'Price is $'",
    "price": "the true price with two decimals, e.g. '123.45'",
    "rounded": "the price as the train text has it, e.g. '123.00'",
    "title": "the product title",
    "category": "the category name",
}


class ExportError(UserError, ValueError):
    """An export that cannot be made, phrased for the user (exit code 2)."""


class RowError(ValueError):
    """One row cannot be exported; the message says why, the caller says which row."""


@dataclass(frozen=True)
class Templates:
    """The three chat texts; ``{name}`` fields take the values listed in ``PLACEHOLDERS``."""

    system: str = DEFAULT_SYSTEM
    user: str = DEFAULT_USER
    assistant: str = DEFAULT_ASSISTANT

    def as_dict(self) -> dict:
        return {"system": self.system, "user": self.user, "assistant": self.assistant}


def template_problems(templates: Templates) -> list[str]:
    """Fields a template names that no row has, and format errors; empty when the templates are usable."""
    found = []
    for role, template in templates.as_dict().items():
        try:
            parsed = list(string.Formatter().parse(template))
        except ValueError as exc:
            found.append(f"{role} template {template!r}: {exc}")
            continue
        for _literal, name, _spec, _conversion in parsed:
            if name is not None and name not in PLACEHOLDERS:
                found.append(f"{role} template {template!r} uses {{{name}}}; "
                             f"available: {', '.join('{' + key + '}' for key in PLACEHOLDERS)}")
    return found


def rounded_price(price: float) -> str:
    """The price as the recipe writes it into a train text (Python rounding, half to even)."""
    return f"{round(price)}.00"


def split_text(text: str, rules: Recipe) -> tuple[str, str]:
    """``(prompt, completion)``: the prompt ends at the last price prefix; the completion is the rest ("" in test)."""
    at = text.rfind(rules.price_prefix)
    if at < 0:
        raise RowError(f"text has no price prefix {rules.price_prefix!r}")
    end = at + len(rules.price_prefix)
    return text[:end], text[end:]


def description_of(prompt: str, rules: Recipe) -> str:
    """The product text of a prompt: without the question in front and the price line at the end."""
    head = rules.question + "\n\n"
    if not prompt.startswith(head):
        raise RowError(f"text does not start with the recipe's question {rules.question!r}")
    body = prompt[len(head): len(prompt) - len(rules.price_prefix)]
    return body.removesuffix("\n\n")


def checked_prompt(row: dict, rules: Recipe) -> str:
    """The row's prompt (up to the price prefix), after checking that a train text's price line is its price."""
    prompt, completion = split_text(row["text"], rules)
    if completion and completion != rounded_price(row["price"]):
        raise RowError(f"text ends in {rules.price_prefix}{completion} but the row's price is {row['price']!r}")
    return prompt


def fields_of(row: dict, rules: Recipe) -> dict:
    """The template values of one row."""
    prompt = checked_prompt(row, rules)
    return {
        "question": rules.question.replace(NEAREST_DOLLAR, ""),
        "full_question": rules.question,
        "description": description_of(prompt, rules),
        "prefix": rules.price_prefix,
        "price": f"{row['price']:.2f}",
        "rounded": rounded_price(row["price"]),
        "title": row.get("title") or "",
        "category": row.get("category") or "",
    }


def chat(row: dict, rules: Recipe, templates: Templates) -> list[dict]:
    """The system, user and assistant messages of one row."""
    values = fields_of(row, rules)
    return [{"role": role, "content": template.format_map(values)} for role, template in templates.as_dict().items()]


def chat_problem(messages: list[dict]) -> str | None:
    """Why a conversation is not a valid fine-tuning example, or None: roles in order, non-empty UTF-8 texts."""
    roles = [message.get("role") for message in messages]
    if roles != list(ROLES):
        return f"roles are {roles}, expected {list(ROLES)}"
    for number, message in enumerate(messages, 1):
        content = message.get("content")
        if not isinstance(content, str) or not content.strip():
            return f"message {number} ({message['role']}) is empty"
        try:
            content.encode("utf-8")
        except UnicodeEncodeError as exc:
            return f"message {number} ({message['role']}) is not valid UTF-8 ({exc.reason} at character {exc.start})"
    return None


def chat_line(messages: list[dict]) -> bytes:
    """One JSONL line (with its newline) holding a conversation; RowError when a text cannot be UTF-8."""
    text = json.dumps({"messages": messages}, ensure_ascii=False) + "\n"
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate, which json.dumps passes through
        raise RowError(f"a message is not valid UTF-8 ({exc.reason})") from None


def line_problem(line: bytes, max_bytes: int = MAX_LINE_BYTES) -> str | None:
    """Why a written JSONL line is not a valid chat example, or None; checks the bytes as a service would."""
    if len(line) > max_bytes:
        return f"the line is {len(line):,} bytes, over the limit of {max_bytes:,}"
    try:
        value = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError as exc:
        return f"the line is not valid UTF-8 ({exc.reason} at byte {exc.start})"
    except ValueError as exc:
        return f"the line is not JSON ({exc})"
    if not isinstance(value, dict) or list(value) != ["messages"] or not isinstance(value["messages"], list):
        return 'the line is not an object with only a "messages" list'
    if not all(isinstance(message, dict) for message in value["messages"]):
        return "a message is not an object"
    return chat_problem(value["messages"])


def prompt_completion(row: dict, rules: Recipe) -> dict:
    """TRL's prompt-completion pair: the prompt ends at the price prefix, the completion is the price text.

    A train or validation row's prompt + completion is its text. A test row's
    completion is the true price written the same way, so the pair can be scored.
    """
    prompt = checked_prompt(row, rules)
    try:
        prompt.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise RowError(f"prompt is not valid UTF-8 ({exc.reason} at character {exc.start})") from None
    return {"prompt": prompt, "completion": rounded_price(row["price"])}


def token_texts(record: dict) -> list[str]:
    """The texts of one exported record whose tokens are counted (a chat's contents, or prompt and completion)."""
    if "messages" in record:
        return [message["content"] for message in record["messages"]]
    return [record["prompt"], record["completion"]]
