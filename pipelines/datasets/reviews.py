"""`reviews`: short review sentences labelled negative or positive, generated locally (no network).

No labelled sentence corpus ships with the packages deeparch installs (scikit-learn's
20 newsgroups and TFDS' imdb_reviews download theirs), so this builder writes one: a few thousand
sentences about films, restaurants and gadgets, in the style of short product and film reviews.
What makes real short reviews hard is built in: a large sentiment vocabulary whose words are drawn
with Zipf frequencies (many appear once or never in training), negation ("not good", "never
disappointed"), contrast where the last clause decides ("great cast but a dull script"),
sentiment without a sentiment word ("we waited an hour for our food"), intensifiers, neutral
clauses, typos, and 3 % of the labels flipped, as annotators disagree.
"""

from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

from pipelines.datasets.embedded import EmbeddedBuilder

SEED = 20240614
SPLIT_SIZES = {"train": 2400, "test": 600}
LABEL_NOISE = 0.03

# Sentiment words, most common first: drawn with Zipf weights, so the tail is rare.
POSITIVE = (
    "good great excellent amazing nice wonderful fantastic perfect awesome enjoyable fun solid "
    "impressive beautiful brilliant superb delightful lovely outstanding terrific charming pleasant "
    "reliable sturdy fresh tasty delicious friendly helpful clever witty moving touching gripping "
    "stunning gorgeous flawless remarkable satisfying memorable refreshing elegant comfortable "
    "smooth crisp generous attentive cozy affordable durable intuitive responsive hilarious "
    "heartwarming captivating riveting exquisite splendid marvelous fabulous magnificent "
    "phenomenal top-notch spotless polished sharp vivid sublime uplifting inventive engaging "
    "dependable speedy sleek handy worthwhile thoughtful tender savory juicy crunchy courteous"
).split()
NEGATIVE = (
    "bad terrible awful poor boring horrible disappointing dull mediocre worst weak cheap slow "
    "broken rude bland cold stale greasy noisy dirty flimsy useless pointless annoying confusing "
    "predictable forgettable clumsy awkward lame tedious overpriced overcooked undercooked soggy "
    "salty burnt faulty defective unreliable uncomfortable sloppy lazy shallow pretentious "
    "painful dreadful atrocious abysmal pathetic lousy shoddy tasteless unwatchable "
    "incoherent sluggish laggy buggy glitchy cramped filthy inedible tacky garbage dismal "
    "insulting dumb stupid clunky bloated wooden cheesy corny unbearable frustrating "
    "unhelpful dismissive grimy rubbery mushy watery tinny fragile"
).split()
POSITIVE_VERBS = "love like enjoyed recommend adore appreciated loved liked treasure".split()
NEGATIVE_VERBS = "hate dislike regret hated disliked loathe despise resent".split()
POSITIVE_IDIOMS = (
    "five stars",
    "highly recommended",
    "worth every penny",
    "a must see",
    "will definitely come back",
    "exceeded my expectations",
    "could not be happier",
    "two thumbs up",
    "works like a charm",
    "a real gem",
)
NEGATIVE_IDIOMS = (
    "waste of money",
    "avoid at all costs",
    "never again",
    "one star",
    "a complete waste of time",
    "do not buy this",
    "what a letdown",
    "stay away",
    "save your money",
    "returned it the next day",
)
ASPECTS = {
    "film": "movie film acting plot script cast ending story dialogue soundtrack direction characters "
    "camerawork pacing performance sequel villain scenes effects",
    "restaurant": "food service staff waiter pizza place prices menu dessert steak pasta sushi burger "
    "fries atmosphere portions coffee salad wine table",
    "gadget": "phone battery headset screen case charger sound camera keyboard speaker "
    "headphones cable design buttons software app laptop mouse earbuds",
}
NEUTRAL = (
    "we went there on a friday",
    "i bought it last month",
    "my wife picked it",
    "i watched it with my kids",
    "it arrived on tuesday",
    "we were a group of six",
    "i have had it for two weeks",
    "the story is set in paris",
    "i ordered the special",
    "it comes in black and white",
    "we sat near the window",
    "i saw it at the late show",
    "it was my first time there",
    "the box says it is waterproof",
)
# Sentiment said without a sentiment word: what happened, not how it felt.
POSITIVE_EVENTS = (
    "it still works after a year",
    "we stayed until closing time",
    "i laughed the whole way through",
    "the battery lasts all week",
    "i have watched it three times already",
    "they remembered our names",
    "my kids asked to go back",
    "it survived a drop on concrete",
    "i bought a second one for my sister",
    "the waiter brought us free dessert",
    "the time flew by",
    "it paired with my laptop in seconds",
    "every seat was taken and for good reason",
    "i cried at the end in a good way",
)
NEGATIVE_EVENTS = (
    "it stopped working after two days",
    "we waited an hour for our food",
    "i fell asleep halfway through",
    "the battery died before lunch",
    "i walked out after twenty minutes",
    "nobody came to take our order",
    "it broke the first time i used it",
    "the screen cracked in my pocket",
    "i asked for a refund",
    "we found a hair in the soup",
    "the call dropped every few minutes",
    "half the audience left early",
    "i want those two hours back",
    "the charger melted overnight",
)
INTENSIFIERS = ("very", "really", "so", "extremely", "quite", "incredibly", "pretty", "truly", "super")
TYPO_RATE = 0.02


class Reviews(EmbeddedBuilder):
    """3,000 short review sentences (2,400 train / 600 test), negative (0) or positive (1)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Seeded grammar of review sentences over three domains."}

    def _info(self) -> tfds.core.DatasetInfo:
        return self.dataset_info_from_configs(
            description=(
                "Short review sentences about films, restaurants and gadgets, generated by a seeded "
                "grammar: Zipf-distributed sentiment words, negation, contrast, intensifiers, "
                "neutral clauses, typos and 3% label noise. Labels: negative, positive. "
                "Licence: Apache-2.0 (generated by deeparch)."
            ),
            features=tfds.features.FeaturesDict(
                {
                    "text": tfds.features.Text(),
                    "label": tfds.features.ClassLabel(names=["negative", "positive"]),
                }
            ),
            supervised_keys=("text", "label"),
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        rng = np.random.default_rng(SEED)
        total = sum(SPLIT_SIZES.values())
        texts, labels = zip(*(review_sentence(rng) for _ in range(total)), strict=True)
        splits, start = {}, 0
        for name, size in SPLIT_SIZES.items():
            splits[name] = self._generate_examples(texts[start : start + size], labels[start : start + size])
            start += size
        return splits

    def _generate_examples(self, texts, labels):
        for index, (text, label) in enumerate(zip(texts, labels, strict=True)):
            yield index, {"text": text, "label": label}


def review_sentence(rng: np.random.Generator) -> tuple[str, int]:
    """One sentence and its label (1 positive, 0 negative), label noise included."""
    positive = bool(rng.random() < 0.5)
    aspects = ASPECTS[rng.choice(list(ASPECTS))].split()
    sentence = _sentence(rng, positive, aspects)
    if rng.random() < 0.25:  # a neutral clause before or after says nothing of the label
        clause = NEUTRAL[rng.integers(len(NEUTRAL))]
        sentence = f"{clause} and {sentence}" if rng.random() < 0.5 else f"{sentence}, {clause}"
    sentence = _with_typos(rng, sentence)
    sentence += rng.choice([".", ".", ".", "!", "!!", ""])
    label = int(positive) if rng.random() >= LABEL_NOISE else int(not positive)
    return sentence, label


def _sentence(rng: np.random.Generator, positive: bool, aspects: list[str]) -> str:
    kind = rng.choice(
        ["plain", "plain", "plain", "negated", "contrast", "verb", "event", "event", "idiom", "short"]
    )
    if kind == "contrast":  # the clause after "but" decides
        first = _clause(rng, not positive, aspects, negated=False)
        last = _clause(rng, positive, aspects, negated=rng.random() < 0.3)
        joined = rng.choice(["{a} but {b}", "{a}, but {b}", "although {a}, {b}", "{a}; however, {b}"])
        return joined.format(a=first, b=last)
    if kind == "verb":
        negated = rng.random() < 0.3
        verbs = POSITIVE_VERBS if positive != negated else NEGATIVE_VERBS
        verb = verbs[rng.integers(len(verbs))]
        target = rng.choice(["it", "this", f"the {_pick(rng, aspects)}", "this place", "this one"])
        if negated:
            negation = rng.choice(["did not", "do not", "don't", "never"])
            return f"i {negation} {verb} {target}"
        return f"i {rng.choice(['', 'really ', 'absolutely '])}{verb} {target}"
    if kind == "idiom":
        idioms = POSITIVE_IDIOMS if positive else NEGATIVE_IDIOMS
        idiom = idioms[rng.integers(len(idioms))]
        return f"{_clause(rng, positive, aspects, negated=False)}, {idiom}" if rng.random() < 0.5 else idiom
    if kind == "event":
        events = POSITIVE_EVENTS if positive else NEGATIVE_EVENTS
        return events[rng.integers(len(events))]
    if kind == "short":
        return f"{_intensified(rng, positive)} {_pick(rng, aspects)}"
    return _clause(rng, positive, aspects, negated=kind == "negated")


def _clause(rng: np.random.Generator, positive: bool, aspects: list[str], negated: bool) -> str:
    """`the <aspect> was <adjective>`, its adjective of the other polarity when negated."""
    subject = f"{rng.choice(['the', 'the', 'this', 'that', 'my', 'their'])} {_pick(rng, aspects)}"
    verb = rng.choice(["was", "is"] if negated else ["was", "is", "was", "seemed", "felt", "looked"])
    if negated:
        negation = rng.choice(["not", "not", "never", "hardly", "not at all"])
        return f"{subject} {verb} {negation} {_intensified(rng, not positive)}"
    return f"{subject} {verb} {_intensified(rng, positive)}"


def _intensified(rng: np.random.Generator, positive: bool) -> str:
    words = POSITIVE if positive else NEGATIVE
    word = _pick(rng, words, zipf=True)
    if rng.random() < 0.3:
        return f"{INTENSIFIERS[rng.integers(len(INTENSIFIERS))]} {word}"
    return word


def _pick(rng: np.random.Generator, words: list[str], zipf: bool = False) -> str:
    if not zipf:
        return words[rng.integers(len(words))]
    weights = 1.0 / np.arange(1, len(words) + 1)
    return words[rng.choice(len(words), p=weights / weights.sum())]


def _with_typos(rng: np.random.Generator, sentence: str) -> str:
    """Each word of four letters or more loses a letter with a small probability, as people type."""
    words = sentence.split(" ")
    for index, word in enumerate(words):
        if len(word) >= 4 and rng.random() < TYPO_RATE:
            cut = int(rng.integers(1, len(word) - 1))
            words[index] = word[:cut] + word[cut + 1 :]
    return " ".join(words)
