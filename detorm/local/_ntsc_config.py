"""Launch configs of commands, notebooks, shells and TensorBoards (``model.CommandConfig``).

``getCommandLaunchParams`` (``master/internal/api_command.go``) builds a task's config in three
layers: ``model.DefaultConfig`` of the pool's task container defaults, then the template
(``yaml.Unmarshal``, unknown keys ignored), then the request's config (``json.Decoder`` with
``DisallowUnknownFields``). Both decode *into* the struct already there, as ``encoding/json``
does: an object sets the fields it names and leaves the others, a map keeps its other keys, a
list replaces the list (bind mounts and devices merge by container path, environment variables
append: their ``UnmarshalJSON``), ``null`` clears a pointer, list or map and leaves anything
else alone. The config is a plain dict here, shaped as the Go struct marshals (``json.Marshal``,
``omitempty`` fields left out); the API returns it as a ``Struct`` (keys sorted, numbers
doubles).
"""

from __future__ import annotations

import base64
import io
import json
import math
import re
import secrets
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

__all__ = [
    "ConfigError",
    "MAX_RECV_MESSAGE_BYTES",
    "apply_config",
    "context_archive",
    "default_config",
    "go_json",
    "launch_message_size",
    "petname",
    "struct_view",
    "validation_error",
]

MAX_RECV_MESSAGE_BYTES: int = 96 * 1024 * 1024
"""``grpc.MaxRecvMsgSize(96*1024*1024)`` of the master's gRPC server (``grpcutil/api.go``): a
request message larger than this (context files and all) is refused before the RPC runs. A
module attribute so that tests need not send 96 MiB."""

CPU_IMAGE: Final = "determinedai/pytorch-ngc-dev:0736b6d"
CUDA_IMAGE: Final = "determinedai/pytorch-ngc-dev:0736b6d"
ROCM_IMAGE: Final = "determinedai/environments:rocm-5.6-pytorch-1.3-tf-2.10-rocm-mpich-0736b6d"
NOTEBOOK_IDLE_TYPES: Final = ("kernels_or_terminals", "kernel_connections", "activity")


class ConfigError(Exception):
    """The first error ``json.Decoder.Decode`` reports (Go's message)."""


# --- petnames (github.com/dustinkirkland/golang-petname: adverb-adjective-name) ------------------
_ADVERBS: Final = (
    "abnormally", "absolutely", "accurately", "actively", "actually", "adequately", "amazingly",
    "annually", "apparently", "badly", "barely", "basically", "blatantly", "blindly", "bravely",
    "brightly", "briefly", "broadly", "busily", "calmly", "carefully", "certainly", "cheaply",
    "clearly", "closely", "commonly", "completely", "constantly", "correctly", "curiously",
    "daily", "deadly", "deeply", "definitely", "directly", "distinctly", "duly", "eagerly",
    "early", "easily", "eminently", "endlessly", "enormously", "entirely", "equally", "evenly",
    "evidently", "exactly", "explicitly", "externally", "extremely", "factually", "fairly",
    "finally", "firmly", "frankly", "freely", "frequently", "friendly", "fully", "generally",
    "gently", "genuinely", "globally", "gradually", "greatly", "happily", "hardly", "heartily",
    "highly", "honestly", "hopefully", "humbly", "ideally", "immensely", "initially",
    "instantly", "intensely", "internally", "jointly", "kindly", "largely", "lately", "legally",
    "lightly", "likely", "literally", "lively", "locally", "loosely", "loudly", "lovely",
    "luckily", "mainly", "manually", "markedly", "merely", "mildly", "mostly", "mutually",
    "namely", "nationally", "naturally", "nearly", "neatly", "needlessly", "newly", "nicely",
    "notably", "noticeably", "obviously", "openly", "overly", "partially", "particularly",
    "perfectly", "physically", "plainly", "pleasantly", "poorly", "positively", "possibly",
    "precisely", "premium", "presumably", "previously", "primarily", "privately", "probably",
    "promptly", "properly", "publicly", "purely", "quickly", "quietly", "radically", "randomly",
    "rapidly", "rarely", "really", "reasonably", "recently", "regularly", "remarkably",
    "repeatedly", "rightly", "roughly", "routinely", "sadly", "safely", "scarcely", "secondly",
    "secretly", "seemingly", "sensibly", "separately", "seriously", "severely", "sharply",
    "shortly", "similarly", "simply", "sincerely", "singularly", "slightly", "slowly",
    "smoothly", "socially", "solely", "specially", "steadily", "strangely", "strictly",
    "strongly", "subtly", "suddenly", "suitably", "supposedly", "surely", "swiftly", "tightly",
    "totally", "truly", "typically", "ultimately", "unduly", "uniformly", "uniquely", "unlikely",
    "urgently", "usefully", "usually", "utterly", "vaguely", "vastly", "verbally", "vertically",
    "vitally", "warmly", "wholly", "widely", "wildly", "willingly", "wrongly", "yearly",
)  # fmt: skip
_ADJECTIVES: Final = (
    "able", "above", "absolute", "accepted", "accurate", "ace", "active", "actual", "adapted",
    "adapting", "adequate", "adjusted", "advanced", "alert", "alive", "allowed", "allowing",
    "amazed", "amazing", "ample", "amused", "amusing", "apparent", "apt", "arriving", "artistic",
    "assured", "assuring", "awaited", "awake", "aware", "balanced", "becoming", "beloved",
    "better", "big", "blessed", "bold", "boss", "brave", "brief", "bright", "bursting", "busy",
    "calm", "capable", "capital", "careful", "caring", "casual", "causal", "central", "certain",
    "champion", "charmed", "charming", "cheerful", "chief", "choice", "civil", "classic",
    "clean", "clear", "clever", "climbing", "close", "closing", "coherent", "comic", "communal",
    "complete", "composed", "concise", "concrete", "content", "cool", "correct", "cosmic",
    "crack", "creative", "credible", "crisp", "crucial", "cuddly", "cunning", "curious",
    "current", "cute", "daring", "darling", "dashing", "dear", "decent", "deciding", "deep",
    "definite", "delicate", "desired", "destined", "devoted", "direct", "discrete", "distinct",
    "diverse", "divine", "dominant", "driven", "driving", "dynamic", "eager", "easy", "electric",
    "elegant", "emerging", "eminent", "enabled", "enabling", "endless", "engaged", "engaging",
    "enhanced", "enjoyed", "enormous", "enough", "epic", "equal", "equipped", "eternal",
    "ethical", "evident", "evolved", "evolving", "exact", "excited", "exciting", "exotic",
    "expert", "factual", "fair", "faithful", "famous", "fancy", "fast", "feasible", "fine",
    "finer", "firm", "first", "fit", "fitting", "fleet", "flexible", "flowing", "fluent",
    "flying", "fond", "frank", "free", "fresh", "full", "fun", "funky", "funny", "game",
    "generous", "gentle", "genuine", "giving", "glad", "glorious", "glowing", "golden", "good",
    "gorgeous", "grand", "grateful", "great", "growing", "grown", "guided", "guiding", "handy",
    "happy", "hardy", "harmless", "healthy", "helped", "helpful", "helping", "heroic", "hip",
    "holy", "honest", "hopeful", "hot", "huge", "humane", "humble", "humorous", "ideal", "immense",
    "immortal", "immune", "improved", "in", "included", "infinite", "informed", "innocent",
    "inspired", "integral", "intense", "intent", "internal", "intimate", "inviting", "joint",
    "just", "keen", "key", "kind", "knowing", "known", "large", "lasting", "leading", "learning",
    "legal", "legible", "lenient", "liberal", "light", "liked", "literate", "live", "living",
    "logical", "loved", "loving", "loyal", "lucky", "magical", "magnetic", "main", "major",
    "many", "massive", "mature", "measured", "medical", "merry", "meet", "merciful", "mighty",
    "mint", "mobile", "modern", "modest", "moral", "more", "moved", "moving", "musical",
    "mutual", "national", "native", "natural", "nearby", "neat", "needed", "neutral", "new",
    "next", "nice", "noble", "normal", "notable", "noted", "novel", "obliging", "on", "one",
    "open", "optimal", "optimum", "organic", "oriented", "outgoing", "patient", "peaceful",
    "perfect", "pet", "picked", "pleasant", "pleased", "pleasing", "poetic", "polished",
    "polite", "popular", "positive", "possible", "powerful", "precious", "precise", "premium",
    "prepared", "present", "pretty", "primary", "prime", "pro", "probable", "profound",
    "promoted", "prompt", "proper", "proud", "proven", "pumped", "pure", "quality", "quick",
    "quiet", "rapid", "rare", "rational", "ready", "real", "refined", "regular", "related",
    "relative", "relaxed", "relaxing", "relevant", "relieved", "renewed", "renewing", "resolved",
    "rested", "rich", "right", "robust", "romantic", "ruling", "sacred", "safe", "saved",
    "saving", "secure", "select", "selected", "sensible", "set", "settled", "settling", "sharing",
    "sharp", "shining", "simple", "sincere", "singular", "skilled", "smart", "smashing",
    "smiling", "smooth", "social", "solid", "sought", "sound", "special", "splendid", "square",
    "stable", "star", "steady", "sterling", "still", "stirred", "stirring", "striking", "strong",
    "stunning", "subtle", "suitable", "suited", "summary", "sunny", "super", "superb",
    "supreme", "sure", "sweeping", "sweet", "talented", "teaching", "tender", "thankful",
    "thorough", "tidy", "tight", "together", "tolerant", "top", "topical", "tops", "touched",
    "touching", "tough", "true", "trusted", "trusting", "trusty", "ultimate", "unbiased",
    "uncommon", "unified", "unique", "united", "up", "upright", "upward", "usable", "useful",
    "valid", "valued", "vast", "verified", "viable", "vital", "vocal", "wanted", "warm",
    "wealthy", "welcome", "welcomed", "well", "whole", "willing", "winning", "wired", "wise",
    "witty", "wondrous", "workable", "working", "worthy",
)  # fmt: skip
_NAMES: Final = (
    "ant", "ape", "asp", "baboon", "badger", "bass", "bat", "bear", "beagle", "bee", "beetle",
    "bengal", "bird", "bison", "blowfish", "bluebird", "bluegill", "bluejay", "boa", "boar",
    "bobcat", "bonefish", "boxer", "bream", "buck", "buffalo", "bug", "bull", "bulldog",
    "bunny", "burro", "buzzard", "calf", "camel", "canine", "caribou", "cat", "catfish",
    "cattle", "chamois", "cheetah", "chicken", "chigger", "chimp", "chipmunk", "cicada", "clam",
    "cobra", "cod", "collie", "colt", "condor", "coral", "cougar", "cow", "cowbird", "coyote",
    "crab", "crane", "crappie", "crawdad", "crayfish", "cricket", "crow", "cub", "dane", "dassie",
    "deer", "dingo", "dodo", "doe", "dog", "dogfish", "dolphin", "donkey", "dory", "dove",
    "dragon", "drake", "drum", "duck", "duckling", "eagle", "earwig", "eel", "egret", "elf",
    "elk", "emu", "escargot", "ewe", "falcon", "fawn", "feline", "ferret", "filly", "finch",
    "firefly", "fish", "flamingo", "flea", "flounder", "fly", "foal", "fowl", "fox", "frog",
    "gannet", "gar", "gator", "gazelle", "gecko", "gelding", "ghost", "ghoul", "gibbon",
    "giraffe", "glider", "gnat", "gnu", "goat", "goblin", "goldfish", "goose", "gopher",
    "gorilla", "grackle", "griffon", "grizzly", "grouper", "grouse", "grub", "guinea", "gull",
    "guppy", "haddock", "hagfish", "halibut", "hamster", "hare", "hawk", "hedgehog", "hen",
    "hermit", "heron", "herring", "hippo", "hog", "honeybee", "hookworm", "hornet", "horse",
    "hound", "humpback", "husky", "hyena", "ibex", "iguana", "imp", "impala", "insect", "jackal",
    "jaguar", "jay", "jaybird", "joey", "kangaroo", "katydid", "kid", "killdeer", "kingfish",
    "kit", "kite", "kitten", "kiwi", "koala", "koi", "krill", "lab", "labrador", "ladybird",
    "ladybug", "lamb", "lamprey", "lark", "leech", "lemming", "lemur", "leopard", "liger",
    "lion", "lionfish", "lizard", "llama", "lobster", "locust", "longhorn", "loon", "louse",
    "lynx", "macaque", "macaw", "mackerel", "maggot", "magpie", "mako", "malamute", "mallard",
    "mammal", "mammoth", "man", "manatee", "mantis", "marlin", "marmoset", "marmot", "marten",
    "martin", "mastiff", "mayfly", "meerkat", "midge", "mink", "minnow", "mite", "moccasin",
    "mole", "mollusk", "molly", "monarch", "mongoose", "mongrel", "monitor", "monkey",
    "monkfish", "monster", "moose", "moray", "mosquito", "moth", "mouse", "mudfish", "mule",
    "mullet", "muskox", "muskrat", "mustang", "mutt", "narwhal", "newt", "oarfish", "ocelot",
    "octopus", "opossum", "orca", "oriole", "osprey", "ostrich", "otter", "owl", "ox", "oyster",
    "panda", "panther", "parakeet", "parrot", "pegasus", "pelican", "penguin", "perch",
    "pheasant", "phoenix", "pig", "pigeon", "piglet", "pika", "pipefish", "piranha", "platypus",
    "polecat", "polliwog", "pony", "porpoise", "possum", "prawn", "primate", "pup", "puma",
    "python", "quagga", "quail", "quetzal", "rabbit", "raccoon", "racer", "ram", "raptor", "rat",
    "rattler", "raven", "ray", "redbird", "redfish", "reindeer", "reptile", "rhino", "robin",
    "rodent", "rooster", "roughy", "sailfish", "salmon", "sawfish", "sawfly", "scorpion",
    "sculpin", "seagull", "seahorse", "seal", "seasnail", "serval", "shad", "shark", "sheep",
    "sheepdog", "shepherd", "shiner", "shrew", "shrimp", "silkworm", "skink", "skunk", "skylark",
    "sloth", "slug", "snail", "snake", "snapper", "snipe", "sole", "sparrow", "spaniel",
    "speedy", "sphinx", "spider", "sponge", "squid", "squirrel", "stag", "stallion", "starfish",
    "starling", "stingray", "stinkbug", "stork", "stud", "sturgeon", "sunbeam", "sunbird",
    "sunfish", "swan", "swift", "swine", "tadpole", "tahr", "tapir", "tarpon", "teal", "termite",
    "terrapin", "terrier", "tetra", "thrush", "tick", "tiger", "titmouse", "toad", "tomcat",
    "tortoise", "toucan", "treefrog", "trout", "tuna", "turkey", "turtle", "unicorn", "urchin",
    "vervet", "viper", "vulture", "wahoo", "wallaby", "walleye", "walrus", "warthog", "wasp",
    "weasel", "weevil", "werewolf", "whale", "whippet", "wildcat", "wolf", "wombat", "woodcock",
    "worm", "wren", "yak", "yeti", "zebra",
)  # fmt: skip


def petname() -> str:
    """``petname.Generate(3, "-")``."""
    return "-".join(secrets.choice(words) for words in (_ADVERBS, _ADJECTIVES, _NAMES))


# --- Go's JSON text ------------------------------------------------------------------------------
def _go_float(value: float) -> str:
    """``encoding/json`` (and protojson) of a float64."""
    size = abs(value)
    if size == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    if size < 1e-6 or size >= 1e21:
        return repr(value).replace("e-0", "e-").replace("e+0", "e+")
    if value.is_integer():
        return str(int(value))
    return format(Decimal(repr(value)), "f")


def go_json(value: Any) -> str:
    """Compact JSON as Go writes a ``Struct`` (``protojson.Marshal``): keys sorted, numbers
    doubles."""
    if isinstance(value, dict):
        members = (
            f"{json.dumps(str(k), ensure_ascii=False)}:{go_json(value[k])}" for k in sorted(value)
        )
        return "{" + ",".join(members) + "}"
    if isinstance(value, list):
        return "[" + ",".join(go_json(item) for item in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _go_float(float(value))
    return json.dumps(str(value), ensure_ascii=False)


def struct_view(value: Any) -> Any:
    """A config as the API returns it (a ``Struct``): keys sorted at every level, integral
    numbers written without a fraction."""
    if isinstance(value, dict):
        return {key: struct_view(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [struct_view(item) for item in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)
    return value


# --- Go durations --------------------------------------------------------------------------------
_UNITS: Final = {
    "ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
    "m": 60_000_000_000, "h": 3_600_000_000_000,
}  # fmt: skip
_DURATION_PART: Final = re.compile(r"(\d*\.?\d*)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(text: str) -> int:
    """``time.ParseDuration`` (nanoseconds); ValueError with Go's message."""
    if text in ("0", "+0", "-0"):
        return 0
    sign = -1 if text.startswith("-") else 1
    rest = text[1:] if text[:1] in "+-" else text
    if not rest:
        raise ValueError(f'time: invalid duration "{text}"')
    total = Decimal(0)
    while rest:
        match = _DURATION_PART.match(rest)
        if match is None or match.group(1) in ("", "."):
            if match is None and rest and rest[0].isdigit():
                unit = rest.lstrip("0123456789.")
                raise ValueError(
                    f'time: missing unit in duration "{text}"'
                    if not unit
                    else f'time: unknown unit "{unit}" in duration "{text}"'
                )
            raise ValueError(f'time: invalid duration "{text}"')
        total += Decimal(match.group(1)) * _UNITS[match.group(2)]
        rest = rest[match.end() :]
    return sign * int(total)


def format_duration(nanos: int) -> str:
    """``time.Duration.String``."""
    if nanos == 0:
        return "0s"
    sign = "-" if nanos < 0 else ""
    value = abs(nanos)
    if value < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if value >= size or unit == "ns":
                return sign + _fraction(value, size) + unit
    hours, value = divmod(value, 3_600_000_000_000)
    minutes, value = divmod(value, 60_000_000_000)
    seconds = _fraction(value, 1_000_000_000) + "s"
    text = seconds
    if hours or minutes:
        text = f"{minutes}m{seconds}"
    if hours:
        text = f"{hours}h{text}"
    return sign + text


def _fraction(value: int, size: int) -> str:
    whole, frac = divmod(value, size)
    if not frac:
        return str(whole)
    digits = str(frac).rjust(len(str(size)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"


# --- the schema of model.CommandConfig ----------------------------------------------------------
@dataclass(frozen=True)
class _Field:
    kind: str  # str, int, float, bool, strlist, any, struct, ptr-int, ptr-str, ptr-bool, ...
    go_type: str
    struct: str = ""  # for struct and list-of-struct kinds
    omitempty: bool = False


_STRUCTS: Final[dict[str, tuple[str, dict[str, _Field]]]] = {
    "CommandConfig": ("model.CommandConfig", {
        "description": _Field("str", "string"),
        "bind_mounts": _Field("merged-list", "model.BindMountsConfig", "BindMount"),
        "environment": _Field("struct", "model.Environment", "Environment"),
        "resources": _Field("struct", "model.ResourcesConfig", "ResourcesConfig"),
        "entrypoint": _Field("strlist", "[]string"),
        "tensorboard_args": _Field("strlist", "[]string", omitempty=True),
        "idle_timeout": _Field("duration", "*model.Duration"),
        "notebook_idle_type": _Field("str", "string"),
        "work_dir": _Field("ptr-str", "*string"),
        "debug": _Field("bool", "bool"),
        "pbs": _Field("struct", "expconf.PbsConfigV0", "PbsConfigV0"),
        "slurm": _Field("struct", "expconf.SlurmConfigV0", "SlurmConfigV0"),
    }),
    "Environment": ("model.Environment", {
        "image": _Field("runtime-item", "model.RuntimeItem"),
        "environment_variables": _Field("runtime-items", "model.RuntimeItems"),
        "proxy_ports": _Field("list", "model.ProxyPortsConfig", "ProxyPort"),
        "ports": _Field("int-map", "map[string]int"),
        "registry_auth": _Field("ptr-struct", "*registry.AuthConfig", "AuthConfig", True),
        "force_pull_image": _Field("bool", "bool"),
        "pod_spec": _Field("any", "*v1.Pod"),
        "add_capabilities": _Field("strlist", "[]string"),
        "drop_capabilities": _Field("strlist", "[]string"),
    }),
    "ResourcesConfig": ("model.ResourcesConfig", {
        "slots": _Field("int", "int"),
        "max_slots": _Field("ptr-int", "*int", omitempty=True),
        "weight": _Field("float", "float64"),
        "native_parallel": _Field("bool", "bool", omitempty=True),
        "shm_size": _Field("storage-size", "*model.StorageSize", omitempty=True),
        "resource_pool": _Field("str", "string"),
        "priority": _Field("ptr-int", "*int", omitempty=True),
        "is_single_node": _Field("ptr-bool", "*bool"),
        "devices": _Field("merged-list", "model.DevicesConfig", "DeviceConfig"),
    }),
    "BindMount": ("model.BindMount", {
        "host_path": _Field("str", "string"),
        "container_path": _Field("str", "string"),
        "read_only": _Field("bool", "bool"),
        "propagation": _Field("str", "string"),
    }),
    "DeviceConfig": ("model.DeviceConfig", {
        "host_path": _Field("str", "string"),
        "container_path": _Field("str", "string"),
        "mode": _Field("str", "string"),
    }),
    "ProxyPort": ("model.ProxyPort", {
        "proxy_port": _Field("int", "int"),
        "proxy_tcp": _Field("bool", "bool"),
        "unauthenticated": _Field("bool", "bool"),
        "default_service_id": _Field("bool", "bool"),
    }),
    "AuthConfig": ("registry.AuthConfig", {
        name: _Field("str", "string", omitempty=True)
        for name in ("username", "password", "auth", "email", "serveraddress", "identitytoken",
                     "registrytoken")
    }),
    "PbsConfigV0": ("expconf.PbsConfigV0", {
        "slots_per_node": _Field("ptr-int", "*int", omitempty=True),
        "pbsbatch_args": _Field("strlist", "[]string", omitempty=True),
    }),
    "SlurmConfigV0": ("expconf.SlurmConfigV0", {
        "slots_per_node": _Field("ptr-int", "*int", omitempty=True),
        "gpu_type": _Field("ptr-str", "*string", omitempty=True),
        "sbatch_args": _Field("strlist", "[]string", omitempty=True),
    }),
}  # fmt: skip


def default_config() -> dict[str, Any]:
    """``model.DefaultConfig`` of the default task container defaults, as stored here (every
    field, ``None`` for nil)."""
    return {
        "description": "",
        "bind_mounts": None,
        "environment": {
            "image": {"cpu": CPU_IMAGE, "cuda": CUDA_IMAGE, "rocm": ROCM_IMAGE},
            "environment_variables": {"cpu": None, "cuda": None, "rocm": None},
            "proxy_ports": None,
            "ports": None,
            "registry_auth": None,
            "force_pull_image": False,
            "pod_spec": None,
            "add_capabilities": None,
            "drop_capabilities": None,
        },
        "resources": {
            "slots": 0,
            "max_slots": None,
            "weight": 1.0,
            "native_parallel": False,
            "shm_size": None,
            "resource_pool": "",
            "priority": None,
            "is_single_node": None,
            "devices": None,
        },
        "entrypoint": None,
        "tensorboard_args": None,
        "idle_timeout": None,
        "notebook_idle_type": "kernels_or_terminals",
        "work_dir": None,
        "debug": False,
        "pbs": {"slots_per_node": None, "pbsbatch_args": None},
        "slurm": {"slots_per_node": None, "gpu_type": None, "sbatch_args": None},
    }


def marshal(config: Mapping[str, Any], struct: str = "CommandConfig") -> dict[str, Any]:
    """``json.Marshal`` of the stored config: ``omitempty`` fields without a value left out,
    durations as ``time.Duration.String``."""
    out: dict[str, Any] = {}
    for name, spec in _STRUCTS[struct][1].items():
        value = config.get(name)
        if spec.omitempty and value in (None, [], {}, False, 0, ""):
            continue
        if spec.kind in ("struct", "ptr-struct") and isinstance(value, dict):
            value = marshal(value, spec.struct)
        elif spec.kind in ("runtime-item", "runtime-items") and isinstance(value, dict):
            value = {k: v for k, v in value.items() if v not in (None, "", [])}
        elif spec.kind == "duration" and isinstance(value, int):
            value = format_duration(value)
        elif spec.kind in ("list", "merged-list") and isinstance(value, list):
            value = [marshal(item, spec.struct) for item in value]
        out[name] = value
    return out


# --- decoding into the config (encoding/json semantics) -----------------------------------------
def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return (
            f"number {_go_float(float(value))}" if isinstance(value, float) else f"number {value}"
        )
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


class _Decoder:
    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self.error: ConfigError | None = None

    def fail(self, message: str) -> None:
        if self.error is None:
            self.error = ConfigError(message)

    def type_error(self, value: Any, struct: str, path: str, go_type: str) -> None:
        kind = _json_kind(value)
        if kind.startswith("number") and not go_type.endswith(("int", "float64")):
            kind = "number"
        self.fail(
            f"json: cannot unmarshal {kind} into Go struct field {struct}.{path} of type {go_type}"
        )

    def struct(self, target: dict[str, Any], value: Any, name: str, path: str) -> None:
        if value is None:
            return
        go_name, fields = _STRUCTS[name]
        short = go_name.split(".")[-1]
        if not isinstance(value, dict):
            self.fail(
                f"json: cannot unmarshal {_json_kind(value).split()[0]} into Go "
                + (
                    f"struct field {short}.{path} of type {go_name}"
                    if path
                    else f"value of type {go_name}"
                )
            )
            return
        for key, item in value.items():
            field_name = (
                key
                if key in fields
                else next((n for n in fields if n.lower() == key.lower()), None)
            )
            if field_name is None:
                if self.strict:
                    self.fail(f"json: unknown field {json.dumps(key)}")
                continue
            spec = fields[field_name]
            where = f"{path}.{field_name}" if path else field_name
            target[field_name] = self.field(target.get(field_name), item, spec, short, where)

    def field(self, current: Any, value: Any, spec: _Field, struct: str, path: str) -> Any:
        kind = spec.kind
        if value is None:
            if kind in ("str", "int", "float", "bool", "struct", "runtime-item", "runtime-items"):
                return current
            return None
        if kind == "str":
            if isinstance(value, str):
                return value
        elif kind in ("int", "ptr-int"):
            if isinstance(value, int | float) and not isinstance(value, bool):
                if float(value).is_integer():
                    return int(value)
        elif kind == "float":
            if isinstance(value, int | float) and not isinstance(value, bool):
                return float(value)
        elif kind in ("bool", "ptr-bool"):
            if isinstance(value, bool):
                return value
        elif kind == "ptr-str":
            if isinstance(value, str):
                return value
        elif kind == "any":
            return value
        elif kind == "strlist":
            if isinstance(value, list):
                out: list[str] = []
                for item in value:
                    if item is None or isinstance(item, str):
                        out.append(item or "")
                    else:
                        self.type_error(item, struct, path, "string")
                return out
        elif kind == "int-map":
            if isinstance(value, dict):
                merged = dict(current or {})
                for key, item in value.items():
                    if isinstance(item, int | float) and float(item).is_integer():
                        merged[key] = int(item)
                    else:
                        self.type_error(item, struct, f"{path}.{key}", "int")
                return merged
        elif kind in ("struct", "ptr-struct"):
            target = (
                dict(current)
                if isinstance(current, dict)
                else {name: None for name in _STRUCTS[spec.struct][1]}
            )
            self.struct(target, value, spec.struct, path)
            return target
        elif kind in ("list", "merged-list"):
            if isinstance(value, list):
                items = []
                for item in value:
                    target = {name: None for name in _STRUCTS[spec.struct][1]}
                    self.struct(target, item, spec.struct, path)
                    items.append(_zeroed(target, spec.struct))
                if kind == "merged-list":  # BindMountsConfig / DevicesConfig.UnmarshalJSON
                    paths = {item.get("container_path") for item in items}
                    items += [m for m in (current or []) if m.get("container_path") not in paths]
                return items
            if kind == "merged-list":
                what = "bind mounts" if spec.struct == "BindMount" else "devices"
                self.fail(
                    f"failed to parse {what}: json: cannot unmarshal {_json_kind(value).split()[0]}"
                    f" into Go value of type []{_STRUCTS[spec.struct][0]}"
                )
                return current
        elif kind == "runtime-item":
            return self.runtime_item(current, value)
        elif kind == "runtime-items":
            return self.runtime_items(current, value)
        elif kind == "duration":
            if isinstance(value, str):
                try:
                    return parse_duration(value)
                except ValueError as err:
                    self.fail(f"error parsing duration: {err}")
                    return current
            self.fail(f"invalid duration: {go_json(value)}")
            return current
        elif kind == "storage-size":
            if isinstance(value, int | float) and not isinstance(value, bool):
                return int(value)
            if isinstance(value, str):
                return _ram_in_bytes(value, self)
            self.fail("shm_size needs to be a string or numeric")
            return current
        self.type_error(value, struct, path, spec.go_type)
        return current

    def runtime_item(self, current: Any, value: Any) -> Any:
        item = dict(current or {"cpu": "", "cuda": "", "rocm": ""})
        if isinstance(value, str):
            return {"cpu": value, "cuda": value, "rocm": value}
        if not isinstance(value, dict) or not all(
            isinstance(v, str) or v is None for v in value.values()
        ):
            self.fail(
                "failed to parse runtime item: json: cannot unmarshal"
                f" {_json_kind(value).split()[0]} into Go value of type model.DefaultParser"
            )
            return current
        for key in ("cpu", "rocm", "cuda"):
            if key in value:
                item[key] = value[key] or ""
        if not item.get("cuda") and isinstance(value.get("gpu"), str):
            item["cuda"] = value["gpu"]
        return item

    def runtime_items(self, current: Any, value: Any) -> Any:
        items = {key: list((current or {}).get(key) or []) for key in ("cpu", "cuda", "rocm")}
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            for key in items:
                items[key] += value
        elif isinstance(value, dict):
            for key in ("cpu", "rocm", "cuda"):
                extra = value.get(key)
                if isinstance(extra, list):
                    items[key] += [str(v) for v in extra]
            if not items["cuda"] and isinstance(value.get("gpu"), list):
                items["cuda"] += [str(v) for v in value["gpu"]]
        else:
            self.fail(
                "failed to parse runtime items: json: cannot unmarshal"
                f" {_json_kind(value).split()[0]} into Go value of type model.DefaultParser"
            )
            return current
        return {key: (v or None) for key, v in items.items()}


def _zeroed(target: dict[str, Any], struct: str) -> dict[str, Any]:
    """A decoded list element: Go's zero values for the fields the JSON left out."""
    zeros = {"str": "", "int": 0, "float": 0.0, "bool": False}
    return {
        name: zeros.get(spec.kind) if target.get(name) is None else target[name]
        for name, spec in _STRUCTS[struct][1].items()
    }


_RAM: Final = re.compile(r"^(\d+(?:\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?$")


def _ram_in_bytes(text: str, decoder: _Decoder) -> int | None:
    """``units.RAMInBytes``."""
    match = _RAM.match(text)
    if match is None:
        decoder.fail(f"failed to parse shm_size: invalid size: '{text}'")
        return None
    scale = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
    return int(float(match.group(1)) * scale[(match.group(2) or "").lower()])


def apply_config(config: dict[str, Any], overlay: Any, *, strict: bool) -> None:
    """Decode ``overlay`` into ``config`` as ``json.Decoder`` does (``strict``:
    ``DisallowUnknownFields``); raises :class:`ConfigError` with the first error."""
    decoder = _Decoder(strict)
    decoder.struct(config, overlay, "CommandConfig", "")
    if decoder.error is not None:
        raise decoder.error


def just_resources(overlay: Any) -> tuple[int, str]:
    """``model.ParseJustResources``: the config's slots (default 1) and resource pool; what
    does not parse is ignored."""
    resources = overlay.get("resources") if isinstance(overlay, dict) else None
    slots, pool = 1, ""
    if isinstance(resources, dict):
        raw_slots = resources.get("slots")
        if isinstance(raw_slots, int | float) and not isinstance(raw_slots, bool):
            if float(raw_slots).is_integer():
                slots = int(raw_slots)
        if isinstance(resources.get("resource_pool"), str):
            pool = resources["resource_pool"]
    return slots, pool


def validation_error(config: Mapping[str, Any]) -> str | None:
    """``check.Validate(model.CommandConfig)``: its errors sorted, or None."""
    errors: list[str] = []
    resources = config.get("resources") or {}
    slots = resources.get("slots", 0)
    if slots < 0:
        errors.append(f"resources.slots must be >= 0: {slots} is not greater than or equal to 0")
    if not config.get("entrypoint"):
        errors.append("entrypoint must be non-empty: 0 is not greater than 0")
    idle_type = config.get("notebook_idle_type")
    if idle_type not in NOTEBOOK_IDLE_TYPES:
        errors.append(
            f"invalid notebook idle type: {idle_type} not in [{' '.join(NOTEBOOK_IDLE_TYPES)}]"
        )
    if resources.get("is_single_node") is not None:
        errors.append("resources.is_single_node cannot be set for NTSCs: expected true, got false")
    problems = [f"error found at root: {error}" for error in errors]
    for index, mount in enumerate(config.get("bind_mounts") or []):
        where = f"root.BindMounts[{index}]"
        if mount.get("container_path") == ".":
            problems.append(
                f'error found at {where}: container_path must not be ".": expected true, got false'
            )
        if not str(mount.get("host_path", "")).startswith("/"):
            problems.append(
                f"error found at {where}: host_path must be an absolute path:"
                " expected true, got false"
            )
    if not problems:
        return None
    problems.sort()
    return f"Check Failed! {len(problems)} errors found:\n\t" + "\n\t".join(problems)


# --- the request's size as a protobuf message ---------------------------------------------------
def _varint(value: int) -> int:
    if value < 0:
        return 10
    size = 1
    while value >= 0x80:
        value >>= 7
        size += 1
    return size


def _length_delimited(size: int) -> int:
    return 1 + _varint(size) + size


def _utf8(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _value_size(value: Any) -> int:
    """A ``google.protobuf.Value``: one field of its oneof."""
    if value is None or isinstance(value, bool):
        return 2
    if isinstance(value, int | float):
        return 9
    if isinstance(value, str):
        return _length_delimited(_utf8(value))
    if isinstance(value, list):
        return _length_delimited(sum(_length_delimited(_value_size(item)) for item in value))
    return _length_delimited(_struct_size(value))


def _struct_size(value: Mapping[str, Any]) -> int:
    size = 0
    for key, item in value.items():
        entry = _length_delimited(_utf8(key)) + _length_delimited(_value_size(item))
        size += _length_delimited(entry)
    return size


def _bytes_size(text: Any) -> int:
    if not isinstance(text, str) or not text:
        return 0
    try:
        return len(base64.b64decode(text + "=" * (-len(text) % 4)))
    except ValueError:
        return len(text) * 3 // 4


def _file_size(file: Mapping[str, Any]) -> int:
    size = 0
    if file.get("path"):
        size += _length_delimited(_utf8(str(file["path"])))
    content = _bytes_size(file.get("content"))
    if content:
        size += _length_delimited(content)
    for name in ("type", "mtime", "mode", "uid", "gid"):
        number = int(file.get(name) or 0)
        if number:
            size += 1 + _varint(number)
    return size


def launch_message_size(document: Mapping[str, Any]) -> int:
    """The encoded size of a Launch{Command,Notebook,Shell,Tensorboard}Request (every field
    number is below 16: one byte of tag each)."""
    size = 0
    if "config" in document:
        size += _length_delimited(_struct_size(document.get("config") or {}))
    if document.get("templateName"):
        size += _length_delimited(_utf8(str(document["templateName"])))
    for file in document.get("files") or []:
        size += _length_delimited(_file_size(file))
    data = _bytes_size(document.get("data"))
    if data:
        size += _length_delimited(data)
    for name in ("workspaceId",):
        number = int(document.get(name) or 0)
        if number:
            size += 1 + _varint(number)
    if document.get("preview"):
        size += 2
    for name in ("experimentIds", "trialIds"):
        ids = document.get(name) or []
        if ids:
            size += _length_delimited(sum(_varint(int(i)) for i in ids))
    if document.get("filters") is not None:
        size += _length_delimited(len(json.dumps(document["filters"])))
    return size


# --- the context directory ----------------------------------------------------------------------
def context_archive(files: list[Mapping[str, Any]]) -> bytes:
    """``archive.ToTarGz`` of the request's ``utilv1.File`` list (``filesToArchive``)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.GNU_FORMAT) as tar:
        for file in files:
            info = tarfile.TarInfo(str(file.get("path", "")))
            content = base64.b64decode(str(file.get("content") or ""))
            kind = int(file.get("type") or 0)
            info.type = bytes([kind]) if kind else tarfile.REGTYPE
            info.mode = int(file.get("mode") or 0) & 0o7777
            info.uid = max(int(file.get("uid") or 0), 0)
            info.gid = max(int(file.get("gid") or 0), 0)
            info.mtime = int(file.get("mtime") or 0)
            if info.type in (tarfile.REGTYPE, tarfile.AREGTYPE):
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
            else:
                tar.addfile(info)
    return buffer.getvalue()
