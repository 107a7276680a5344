"""The one table of requests refused whatever else a message says: prompt injection and another
user's data (English and Chinese).

The intent classifier (``assistant.understanding.intents``) checks these before any other intent,
and the assistant checks them again on every message as defence in depth, so both read this one
table. Each rule is one regular-expression alternative, matched case-insensitively anywhere in
the message; a message is refused when any rule matches.
"""

from __future__ import annotations

import re
from typing import Literal

__all__ = ["INJECTION", "OTHER_USERS", "SafetyReason", "refuse_reason"]

SafetyReason = Literal["injection", "private"]

# Attempts to read or replace the assistant's instructions.
_INJECTION_RULES: tuple[str, ...] = (
    r"\b(?:ignore|disregard|forget|override|bypass)\s+"
    r"(?:all\s+|any\s+|the\s+|your\s+|my\s+|previous\s+|prior\s+|above\s+|earlier\s+|these\s+)*"
    r"(?:instructions?|rules|prompts?|guidelines|directions|system\s+message)",
    r"\bsystem\s+prompt",
    r"\b(?:your|the)\s+(?:initial\s+|hidden\s+|original\s+)?(?:prompt|instructions)\b",
    r"\breveal\s+(?:your|the)\b",
    r"\bjailbreak",
    r"\bdeveloper\s+mode",
    r"\bdo\s+anything\s+now\b",
    r"\bDAN\s+mode",
    r"\bpretend\s+(?:you\s+are|to\s+be)",
    r"\byou\s+are\s+now\s+(?:a|an|my)\b",
    r"\bact\s+as\s+(?:a|an)\s+(?!shopping)",
    r"\bprint\s+(?:your|the)\s+(?:instructions|prompt|rules)",
    r"ignore (?:all |any |the )?(?:previous|prior|above|your) (?:instructions|rules|prompt)",
    r"(?:reveal|show|print|repeat|tell me|what is|what's|give me) (?:me )?(?:your|the) "
    r"(?:system |hidden |initial )?(?:prompt|instructions)",
    r"system prompt",
    r"developer mode",
    r"jailbreak",
    r"you are now (?:a|an|in)\b",
    r"pretend (?:to be|you are)",
    r"忽略(?:之前|以上|前面|所有|你的)?的?(?:指令|指示|规则|提示|设定)",
    r"系统提示",
    r"提示词",
    r"越狱",
    r"开发者模式",
    r"无视(?:之前|以上)?的?(?:指令|规则)",
    r"忽略(?:之前|以上|所有)?(?:的)?(?:指令|指示|规则)",
)

# Requests for another shopper's history, orders or personal data.
_OTHER_USERS_RULES: tuple[str, ...] = (
    r"\b(?:another|other|a\s+different|someone\s+else'?s?|somebody\s+else'?s?)\s+"
    r"(?:users?|customers?|shoppers?|persons?|people|accounts?)(?:'s|s')?\s*"
    r"(?:purchase\s+|order\s+|shopping\s+|browsing\s+)?"
    r"(?:history|orders?|purchases?|data|account|address|info|information|details|profile|cart)",
    r"\bwhat\s+(?:did|does|has)\s+(?:user|customer|shopper|client)\s*#?\s*\w+\s+"
    r"(?:buy|bought|purchase|order|like)",
    r"\b(?:user|customer|shopper)\s*#?\s*\d+(?:'s)?\s+(?:purchase\s+)?"
    r"(?:history|purchases|orders|data|profile)",
    r"\b(?:other|all)\s+(?:users|customers)(?:'|')?\s+(?:histories|history|orders|purchases|data)",
    r"\b(?:other|another) (?:users?|customers?|shoppers?|people)(?:'s|s')? "
    r"(?:data|history|histories|orders?|purchases?|profiles?|emails?|addresses|details)",
    r"\b(?:user|customer|shopper) (?:#|id )?[\w-]+(?:'s)? "
    r"(?:history|orders?|purchases?|profile|data|email|address)",
    r"what did (?:user|customer|shopper|someone else|\w+ else) (?:buy|purchase|order)",
    r"what (?:did|does|has) (?:user|customer|shopper|client) #?[\w.@-]+ (?:buy|bought|purchase|order)",
    r"someone else'?s (?:history|orders?|purchases?|data|profile)",
    r"其他用户",
    r"别的用户",
    r"别人的(?:购买|订单|记录|历史|地址|信息|数据)",
    r"用户\s*\d+\s*的(?:购买|订单|记录|历史)",
    r"(?:其他|别的)(?:用户|顾客|人)的(?:数据|记录|订单|购买|资料)",
    r"别人的(?:数据|记录|订单|购买|资料)",
)

INJECTION = re.compile("|".join(_INJECTION_RULES), re.I)
OTHER_USERS = re.compile("|".join(_OTHER_USERS_RULES), re.I)


def refuse_reason(text: str) -> SafetyReason | None:
    """ "injection" or "private" when a rule matches ``text`` (injection is checked first), else None."""
    if INJECTION.search(text):
        return "injection"
    if OTHER_USERS.search(text):
        return "private"
    return None
