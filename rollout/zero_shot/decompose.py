"""Query decomposition, the first step of the zero-shot DSTH strategy (Yang et al., NeurIPS 2025).

A query is split into an *attribute* sub-query (the target: noun phrase with its appearance) and an
*action* sub-query (what it does), e.g. "the man in the grey coat picks up the phone" ->
("the man in the grey coat", "picks up the phone"). `decompose_query` is rule-based by default (a
verb lexicon plus heuristics, below); with a `generate_fn` it asks the model (DECOMPOSE_PROMPT) and
falls back to the rules when the answer does not parse.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Callable, Optional

_BASE_VERBS = """
walk turn pick stand sit look take put hold raise open close go come run talk speak say point touch
hug push pull give hand leave enter move nod shake smile laugh drink eat read write watch throw
catch bend kneel lie jump dance clap wave kiss follow step stop lower lift grab hit kick carry wear
get lean reach place pass pat pour drop fall climb ride drive cry shout answer call play swing hang
approach squat crouch rise chase fight slap punch stare glance gaze wipe cover fix adjust remove show
bow sing knock cross return appear disappear exit rush hurry spin rotate roll bounce slide float fly
swim feed pet lick bite sniff lay set toss tap press type use check help keep begin start continue
try wait stay rest sleep wake change bring send receive accept drag stretch scratch rub shrug bump
grasp release let make do have hide jog skip chat nap dig wag wrap tie cut kill shoot aim hold lead
grab squeeze tilt twist pace head back face circle glide hover sway scroll sweep clean wash brush
comb shave hit serve hold hop crawl creep beat beckon gesture signal salute applaud embrace greet
""".split()
_DOUBLE_FINAL = set("run sit put get hit stop step nod hug clap drop pat swim grab chat jog tap skip "
                    "spin begin cut set let rub dig wag nap pet shrug drag wrap shop trip slip hop".split())
_IRREGULAR_PAST = dict(pair.split(":") for pair in """
take:took put:put sit:sat stand:stood go:went come:came run:ran give:gave hold:held leave:left fall:fell
get:got throw:threw catch:caught see:saw say:said speak:spoke eat:ate drink:drank write:wrote read:read
ride:rode drive:drove rise:rose hang:hung lie:lay lead:led bend:bent kneel:knelt begin:began keep:kept
bring:brought send:sent make:made do:did have:had hide:hid cut:cut shoot:shot beat:beat fly:flew swim:swam
stick:stuck strike:struck spin:spun swing:swung slide:slid tear:tore wear:wore hit:hit set:set let:let
feed:fed lay:laid fight:fought bite:bit shake:shook wake:woke dig:dug sing:sang sweep:swept creep:crept
sleep:slept
""".split())
"""Base form -> past tense of the irregular verbs (the lexicon's and a few more)."""
_AUX_PRESENT = set("is are has have does do can will would could should may might must keeps starts begins "
                   "continues tries".split())
_AUX_PAST = set("was were had did".split())
_RELATIVE = {"who", "that", "which", "whose", "whom"}
_WH = {"who", "what", "which", "whom", "whose"}
_DETERMINERS = set("the a an his her their its my your our this these those some any both each every one "
                   "two three another other whose".split())
_PREPOSITIONS = set("in on at with of to from by for into onto near behind under over above below beside "
                    "between through across around against along among toward towards without inside "
                    "outside off up down out about like as".split())
_CONJUNCTIONS = {"and", "then", "or", "but", "while"}
_NOT_VERB_ING = set("clothing something nothing anything everything ceiling building king ring thing "
                    "string wing evening morning painting earring stocking wedding ending pudding sibling "
                    "darling railing swing sing bring spring sling sting shilling viking duckling".split())
_PRE_VERB_ADVERBS = set("first then also just still again soon now once always never often".split())
_NOT_ADVERB_LY = set("family belly jelly lily bully holly rally ally fly early only ugly curly silly "
                     "friendly elderly lovely".split())


def _third_person(verb: str) -> str:
    if verb == "have":
        return "has"
    if verb.endswith(("s", "sh", "ch", "x", "z", "o")):
        return verb + "es"
    if verb.endswith("y") and verb[-2] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


def _gerund(verb: str) -> str:
    if verb.endswith("ie"):
        return verb[:-2] + "ying"
    if verb.endswith("e") and not verb.endswith(("ee", "ye", "oe")):
        return verb[:-1] + "ing"
    if verb in _DOUBLE_FINAL:
        return verb + verb[-1] + "ing"
    return verb + "ing"


def _past(verb: str) -> str:
    if verb in _IRREGULAR_PAST:
        return _IRREGULAR_PAST[verb]
    if verb.endswith("e"):
        return verb + "d"
    if verb.endswith("y") and verb[-2] not in "aeiou":
        return verb[:-1] + "ied"
    if verb in _DOUBLE_FINAL:
        return verb + verb[-1] + "ed"
    return verb + "ed"


_BASE_VERB_SET = frozenset(_BASE_VERBS)
PRESENT_VERBS = frozenset(_third_person(v) for v in _BASE_VERBS) | _AUX_PRESENT
"""Finite present-tense forms (third person) of the lexicon's verbs, plus auxiliaries."""
PAST_VERBS = frozenset(_past(v) for v in _BASE_VERBS) | frozenset(_IRREGULAR_PAST.values()) | _AUX_PAST
GERUNDS = frozenset(_gerund(v) for v in _BASE_VERBS)


@dataclass(frozen=True)
class SubQueries:
    attribute: str
    """The target as a noun phrase with its appearance: "the man in the grey coat"."""
    action: str
    """What it does: "picks up the phone". The whole query when no verb was found."""
    source: str = "rules"
    """How they were made: "rules" or "model". As with the rules, a model answer with no action
    gets the whole query as its action."""


def normalise_query(query: str) -> str:
    """Lower-cased, whitespace collapsed, trailing . ! ? stripped."""
    return " ".join(query.split()).lower().rstrip(".!? ")


def _word(token: str) -> str:
    return token.strip(".,;:!?\"'()")


def _is_adverb(word: str) -> bool:
    if word in _PRE_VERB_ADVERBS:
        return True
    return word.endswith("ly") and len(word) > 4 and word not in _NOT_ADVERB_LY


def _is_gerund(words: list[str], i: int) -> bool:
    w = words[i]
    if w in GERUNDS:
        return True
    return w.endswith("ing") and len(w) > 4 and w not in _NOT_VERB_ING


def _find_action_start(words: list[str], start: int) -> Optional[int]:
    """Index where the action begins (see decompose_by_rules), or None when there is no verb."""
    present = past = gerund = relative_verb = None
    in_relative = relative_verb_seen = False
    for i in range(start + 1, len(words)):
        w, prev = words[i], words[i - 1]
        if w in _RELATIVE and w != "that" or (w == "that" and prev not in _PREPOSITIONS and i > start + 1):
            in_relative, relative_verb_seen = True, False
            continue
        noun_use = prev in _DETERMINERS or prev in _PREPOSITIONS and prev not in ("to",)
        # a past form right after another verb is its complement, not a new verb ("moving left")
        after_verb = prev in PRESENT_VERBS or prev in PAST_VERBS or _is_gerund(words, i - 1)
        finite = not noun_use and (w in PRESENT_VERBS or (w in PAST_VERBS and not after_verb))
        if in_relative:
            if not relative_verb_seen and (finite or _is_gerund(words, i)):
                relative_verb_seen = True
                relative_verb = i if relative_verb is None else relative_verb
                continue
            joined = prev in _CONJUNCTIONS or prev.endswith(",") or prev in PRESENT_VERBS or prev in PAST_VERBS
            if relative_verb_seen and finite and not joined:
                in_relative = False  # the relative clause ended: this is the main verb
            else:
                continue
        if finite and w in PRESENT_VERBS and present is None:
            present = i
        elif finite and w in PAST_VERBS and past is None:
            past = i
        elif not noun_use and gerund is None and _is_gerund(words, i):
            gerund = i
        if present is not None:
            break
    for found in (present, past, gerund):
        if found is not None:
            return found
    return relative_verb


_DO = {"do", "does", "did"}
_BE = {"is", "are", "was", "were"}


def _is_question_verb(words: list[str], i: int) -> bool:
    """words[i] is the finite verb of a wh-question (not a noun after a determiner or preposition)."""
    prev = words[i - 1]
    if prev in _DETERMINERS or prev in _PREPOSITIONS:
        return False
    return words[i] in _DO or words[i] in PRESENT_VERBS or words[i] in PAST_VERBS


def _conjugate(base: str, auxiliary: str) -> str:
    """The verb as the do-auxiliary inflects it: does -> third person, did -> past, do -> base."""
    return {"does": _third_person, "did": _past}.get(auxiliary, str)(base)


def _decompose_question(tokens: list[str], words: list[str], start: int) -> Optional[SubQueries]:
    """A wh-question (VidSTG's interrogative sentences) whose answer is the target. The target
    keeps everything the question says about it:

    - the wh-phrase names it: "who"/"whom" -> "the person", "what" -> "the object", with the words
      up to the verb ("who in red" -> "the person in red"); "which"/"what"/"whose" + words ->
      "the" + words ("which adult in red" -> "the adult in red");
    - the target is the subject ("who is watching the ball?"): action = the verb phrase; attribute
      = the wh-phrase's noun phrase when it has words of its own, else that noun with the verb
      phrase as a relative clause ("the person who is watching the ball", "the object that is
      caught by the boy"), since the verb phrase is all the question says about it;
    - the target is the object, with do ("what does the adult in red hold?") or a progressive
      ("what is the child pushing?"): attribute = "the object that the adult in red holds",
      action = "the adult in red holds something" (someone for a person, or the wh-phrase's noun).
    None when no verb follows the wh-phrase."""
    wh = words[start]
    verb = next((i for i in range(start + 1, len(words)) if _is_question_verb(words, i)), None)
    if verb is None:
        return None
    described = " ".join(tokens[start + 1:verb]).strip(" ,")
    person = wh in ("who", "whom")
    if person:
        target, stand_in = _join("the person", described), "someone"
    elif described and words[start + 1] not in _PREPOSITIONS:
        target = stand_in = f"the {described}"
    else:
        target, stand_in = _join("the object", described), "something"
    rest = tokens[verb + 1:]
    if words[verb] in _DO and len(rest) > 1:
        # "what does | the adult in red | hold | on the table": the main verb is the first base form
        # of the lexicon after the subject, else the last word
        after = range(verb + 2, len(words))
        main = next((i for i in after if words[i] in _BASE_VERB_SET and words[i - 1] not in _DETERMINERS
                     and words[i - 1] not in _PREPOSITIONS), len(words) - 1)
        subject = " ".join(tokens[verb + 1:main])
        finite = _conjugate(words[main], words[verb])
        tail = " ".join(tokens[main + 1:])
        return SubQueries(_join(target, "that", subject, finite, tail), _join(subject, finite, stand_in, tail))
    if words[verb] in _BE and len(rest) > 1 and words[verb + 1] in _DETERMINERS:
        # "what is | the child in red | pushing": the subject runs up to the first participle
        main = next((i for i in range(verb + 2, len(words)) if _is_gerund(words, i)
                     and words[i - 1] not in _DETERMINERS), None)
        if main is not None:
            subject = " ".join(tokens[verb + 1:main])
            tail = " ".join(tokens[main + 1:])
            return SubQueries(_join(target, "that", subject, words[verb], tokens[main], tail),
                              _join(subject, words[verb], tokens[main], stand_in, tail))
    phrase = " ".join(tokens[verb:]).strip(" ,")
    if described:
        return SubQueries(target, phrase)
    return SubQueries(_join(target, "who" if person else "that", phrase), phrase)


def _join(*parts: str) -> str:
    return " ".join(p for p in parts if p).strip(" ,")


def decompose_by_rules(query: str) -> SubQueries:
    """Rule-based split (no model). On the normalised query:

    - a leading "there is/are/was/were" is dropped ("there is a child watching a ball");
    - a wh-question (VidSTG's interrogative sentences) asks for the target: `_decompose_question`
      keeps what the question says about it ("what does the adult in red hold?" -> attribute
      "the object that the adult in red holds", action "the adult in red holds something");
    - the action starts at the main verb: the first finite present-tense verb of the lexicon
      (third person, or an auxiliary such as "is"/"has"), else the first past-tense one, else the
      first -ing participle ("the red square moving right"); a verb right after a determiner or a
      preposition is read as a noun ("his hands"); verbs inside a relative clause ("who is wearing a
      hat") belong to the attribute, and a participle phrase before a finite verb ("the man wearing
      a hat walks away") too; adverbs right before the verb ("slowly", "first", "then") go with
      the action;
    - no verb at all: attribute = action = the whole query.
    """
    text = normalise_query(query)
    tokens = text.split()
    words = [_word(t) for t in tokens]
    start = 0
    if len(words) > 2 and words[0] == "there" and words[1] in ("is", "are", "was", "were"):
        start = 2
    if len(words) > start + 1 and words[start] in _WH:
        question = _decompose_question(tokens, words, start)
        if question is not None:
            return question
    verb = _find_action_start(words, start) if len(words) > start + 1 else None
    if verb is None:
        return SubQueries(text, text)
    while verb - 1 > start and _is_adverb(words[verb - 1]):
        verb -= 1
    head = tokens[start:verb]
    while head and _word(head[-1]) in _RELATIVE:  # "the woman who | is holding the phone"
        head = head[:-1]
    attribute = " ".join(head).strip(" ,")
    action = " ".join(tokens[verb:]).strip(" ,")
    return SubQueries(attribute or text, action or text)


DECOMPOSE_PROMPT = (
    "Split this description of a target in a video into two parts.\n"
    '"attribute": the noun phrase that names the target together with its appearance (who or what it '
    "is, what it looks like, what it wears). If the description is a question, the target is what it "
    'asks for: name it with everything the question says about it ("what does the man in red hold?": '
    '"the object that the man in red holds").\n'
    '"action": what the target does (the verb phrase), or the event the question asks about '
    '("the man in red holds something"), or "" if it does nothing.\n'
    'Answer with JSON only, for example: {{"attribute": "the man in the grey coat", "action": "picks up the phone"}}\n'
    'Description: "{query}"'
)


def parse_decomposition(text: str) -> Optional[SubQueries]:
    """The model's answer to DECOMPOSE_PROMPT: a JSON object with string "attribute" (non-empty) and
    "action", or lines "attribute: ..." and "action: ..."; None otherwise. Both are normalised
    (normalise_query); the action may be empty."""
    if not isinstance(text, str):
        return None
    attribute = action = None
    first, last = text.find("{"), text.rfind("}")
    if 0 <= first < last:
        try:
            data = json.loads(text[first:last + 1])
        except ValueError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("attribute"), str) and isinstance(data.get("action"), str):
            attribute, action = data["attribute"], data["action"]
    if attribute is None:
        found_attr = re.search(r"^\W*attribute\W*:\s*(.+)$", text, re.IGNORECASE | re.MULTILINE)
        found_act = re.search(r"^\W*action\W*:\s*(.*)$", text, re.IGNORECASE | re.MULTILINE)
        if found_attr and found_act:
            attribute, action = found_attr.group(1), found_act.group(1)
    if attribute is None:
        return None
    attribute = normalise_query(attribute.strip().strip("\"',"))
    action = normalise_query((action or "").strip().strip("\"',"))
    if not attribute:
        return None
    return SubQueries(attribute, action, "model")


def decompose_query(query: str, generate_fn: Optional[Callable[[str], str]] = None) -> SubQueries:
    """Attribute and action sub-queries: by the model when `generate_fn(prompt) -> text` is given
    and its answer parses, else by `decompose_by_rules`."""
    if generate_fn is not None:
        text = normalise_query(query)
        parsed = parse_decomposition(generate_fn(DECOMPOSE_PROMPT.format(query=text)))
        if parsed is not None:
            return parsed if parsed.action else SubQueries(parsed.attribute, text, "model")
    return decompose_by_rules(query)


