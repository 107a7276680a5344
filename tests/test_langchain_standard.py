"""LangChain's own standard test suites (``langchain-tests``) on our LangChain pieces.

- ``HybridDocumentRetriever`` (``HybridRetriever.as_retriever``) over a real index of the beauty
  fixture: ``RetrieversIntegrationTests`` (``k`` in the constructor and per call, sync and async).
- ``LocalChatModel`` on the real tiny LLM (SmolLM2-135M): ``ChatModelUnitTests`` and
  ``ChatModelIntegrationTests``. What the model cannot do is declared through the suites' feature
  flags, so those tests skip and say why: no tool calling, no structured output or JSON mode
  (``has_tool_calling``/``has_structured_output`` are derived from the class: it overrides neither
  ``bind_tools`` nor ``with_structured_output``), text only (no image/audio/PDF inputs).

No standard test is overridden or xfailed (``test_no_overrides_DO_NOT_OVERRIDE`` checks that).
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pathlib import Path
from typing import Any

import pytest
from langchain_tests.integration_tests import ChatModelIntegrationTests, RetrieversIntegrationTests
from langchain_tests.unit_tests import ChatModelUnitTests

from llm.chat_model import LocalChatModel
from llm.registry import TEST_LLM
from retrieval.hybrid import HybridDocumentRetriever


class TestHybridRetrieverStandard(RetrieversIntegrationTests):
    @pytest.fixture(autouse=True, scope="class")
    def _hybrid(self, request: pytest.FixtureRequest, beauty_index: Any) -> None:
        request.cls.hybrid = beauty_index.retriever

    @property
    def retriever_constructor(self) -> type[HybridDocumentRetriever]:
        return HybridDocumentRetriever

    @property
    def retriever_constructor_params(self) -> dict[str, Any]:
        return {"retriever": self.hybrid}

    @property
    def retriever_query_example(self) -> str:
        return "a gentle moisturizer for dry skin"


class TestLocalChatModelUnit(ChatModelUnitTests):
    """Construction, standard params, tool/structured-output flags: the model is never loaded."""

    @property
    def chat_model_class(self) -> type[LocalChatModel]:
        return LocalChatModel

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model_name": TEST_LLM, "threads": 1, "max_new_tokens": 16}


class TestLocalChatModelIntegration(ChatModelIntegrationTests):
    """Real generation on the tiny LLM: invoke/stream/batch (sync and async), conversations,
    usage metadata, stop sequences, named messages."""

    @pytest.fixture(autouse=True, scope="class")
    def _model_dir(self, request: pytest.FixtureRequest, tiny_llm: Any, tiny_llm_dir: Path) -> None:
        request.cls.model_dir = str(tiny_llm_dir)  # tiny_llm: loaded once, shared by every instance

    @property
    def chat_model_class(self) -> type[LocalChatModel]:
        return LocalChatModel

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {"model_name": self.model_dir, "threads": 1, "max_new_tokens": 16}
