"""Derive an :class:`InstructTemplate` from a model's Jinja chat template, in a sandbox.

A GGUF's ``tokenizer.chat_template`` is untrusted text. It is rendered only with
``jinja2.sandbox.ImmutableSandboxedEnvironment`` (no attribute tricks, no mutation), on small
probe conversations whose contents are unique markers; the text around the markers gives each
role's prefix and suffix. The result is an ordinary template, so the builder can still count
and trim turn by turn.
"""

from __future__ import annotations

from typing import Any

from storyteller.errors import FormatError

__all__ = ["derive_template", "render_chat_template"]

MAX_TEMPLATE_CHARS = 64 * 1024
MAX_RENDER_CHARS = 64 * 1024

_SYS, _U1, _A1, _U2 = "\x02SYS\x03", "\x02U1\x03", "\x02A1\x03", "\x02U2\x03"


def render_chat_template(
    source: str,
    messages: list[dict[str, str]],
    *,
    add_generation_prompt: bool,
    bos_token: str = "",
    eos_token: str = "</s>",
) -> str:
    """Render a Jinja chat template in an immutable sandbox.

    Raises:
        FormatError: jinja2 is missing, or the template fails or misbehaves.
    """
    if len(source) > MAX_TEMPLATE_CHARS:
        raise FormatError(f"the model's chat template is over {MAX_TEMPLATE_CHARS} characters")
    try:
        from jinja2 import TemplateError
        from jinja2.sandbox import ImmutableSandboxedEnvironment
    except ImportError as exc:  # jinja2 arrives with llama-cpp-python; it may be absent
        raise FormatError("jinja2 is not installed, so the model's chat template cannot be read") from exc

    def raise_exception(message: str) -> None:
        raise FormatError(f"the model's chat template refused the probe: {message}")

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    try:
        text = env.from_string(source).render(
            messages=messages,
            add_generation_prompt=add_generation_prompt,
            bos_token=bos_token,
            eos_token=eos_token,
        )
    except FormatError:
        raise
    except (TemplateError, TypeError, ValueError, KeyError, IndexError, AttributeError, RecursionError, OverflowError) as exc:
        raise FormatError(f"the model's chat template failed to render: {exc}") from exc
    if len(text) > MAX_RENDER_CHARS:
        raise FormatError("the model's chat template produced an implausibly long text")
    return text


def _between(text: str, start: str, end: str | None) -> str:
    i = text.index(start) + len(start)
    return text[i:] if end is None else text[i : text.index(end, i)]


def _common_suffix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[len(a) - 1 - n] == b[len(b) - 1 - n]:
        n += 1
    suffix = a[len(a) - n :]
    if suffix != a and suffix[:1] not in ("<", "["):
        # A shared tail of two different special tokens ("...t|>" and "...d|>"): start the
        # prefix at the next token-looking boundary instead.
        cut = min((i for i in (suffix.find("<"), suffix.find("[")) if i >= 0), default=0)
        suffix = suffix[cut:]
    return suffix


def derive_template(source: str, *, eos_token: str = "</s>") -> Any:
    """Work out role prefixes and suffixes by rendering probe conversations.

    Raises:
        FormatError: The template cannot be rendered or its output is not understood.
    """
    from storyteller.prompt.templates import InstructTemplate

    def render(msgs: list[tuple[str, str]], gen: bool) -> str:
        return render_chat_template(
            source, [{"role": r, "content": c} for r, c in msgs], add_generation_prompt=gen, eos_token=eos_token
        )

    try:
        one = render([("user", _U1)], False)
        one_gen = render([("user", _U1)], True)
        three = render([("user", _U1), ("assistant", _A1), ("user", _U2)], False)
        head = one[: one.index(_U1)]
        user_suffix = _between(one, _U1, None)
        if not one_gen.startswith(one):
            raise FormatError("the model's chat template renders turns inconsistently")
        assistant_prefix = one_gen[len(one):]
        between = _between(three, _A1, _U2)
        # The head may carry a preamble (a default system text) before the real user prefix;
        # the user prefix is what the head and the text before the second user turn share.
        user_prefix = _common_suffix(head, between)
        assistant_suffix = between[: len(between) - len(user_prefix)]
        start_u1 = three.index(_U1)
        prefix_before = three[: start_u1 - len(user_prefix)]  # text a system turn might own
        system_prefix = system_suffix = ""
        same_as_user = True
        try:
            with_sys = render([("system", _SYS), ("user", _U1)], False)
            if _SYS in with_sys and with_sys.index(_SYS) < with_sys.index(_U1):
                head = with_sys[: with_sys.index(_SYS)]
                tail = _between(with_sys, _SYS, _U1)
                if tail.endswith(user_prefix) and head.startswith(prefix_before):
                    system_prefix = head[len(prefix_before):]
                    system_suffix = tail[: len(tail) - len(user_prefix)] if user_prefix else tail
                    same_as_user = False
        except FormatError:
            pass  # templates without a system role (e.g. strict alternation) use the user turn
    except ValueError as exc:  # a marker went missing: the template dropped or altered content
        raise FormatError("the model's chat template does not keep message contents verbatim") from exc
    stops = tuple(s for s in dict.fromkeys((assistant_suffix.strip(), user_prefix.strip())) if s)
    return InstructTemplate(
        name="jinja",
        label="the model's own chat template",
        system_prefix=system_prefix,
        system_suffix=system_suffix,
        user_prefix=user_prefix,
        user_suffix=user_suffix,
        assistant_prefix=assistant_prefix,
        assistant_suffix=assistant_suffix,
        system_same_as_user=same_as_user,
        stops=stops,
        source="jinja",
    )
