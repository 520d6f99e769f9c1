"""A stand-in for the `tensorrt` module's build API where the real one cannot be installed (no GPU):
the classes, enums and signatures that `TensorRTRuntime.build_plan` uses, as documented for TensorRT
10.x and 11.x, recording every call. 11.x has no weak typing: no BuilderFlag.FP16 (nor INT8),
and networks are created strongly typed.

It parses the ONNX file with `onnx` to report the network's inputs and outputs, so the shapes a
plan is built for come from the real graph.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from types import SimpleNamespace


class MemoryPoolType(enum.IntEnum):
    WORKSPACE = 0


class NetworkDefinitionCreationFlag(enum.IntEnum):
    EXPLICIT_BATCH = 0  # deprecated in 10, ignored
    STRONGLY_TYPED = 1


class BuilderFlag10(enum.IntEnum):
    FP16 = 0
    INT8 = 1
    TF32 = 7


class BuilderFlag11(enum.IntEnum):  # weak typing removed: precision comes from the network's types
    TF32 = 7


@dataclass
class Calls:
    network_flags: list[int] = field(default_factory=list)
    parsed: list[str] = field(default_factory=list)
    set_flags: list[object] = field(default_factory=list)
    cleared_flags: list[object] = field(default_factory=list)
    pool_limits: list[tuple[object, int]] = field(default_factory=list)
    profile_shapes: dict[str, tuple] = field(default_factory=dict)


def make_tensorrt(version: str):
    """A `tensorrt`-like namespace of this version; `.calls` records what the builder was asked."""
    calls = Calls()
    major = int(version.split(".")[0])
    flags = BuilderFlag10 if major < 11 else BuilderFlag11

    class Tensor(SimpleNamespace):
        pass

    class Network:
        def __init__(self, flags_value: int) -> None:
            if major >= 11 and not flags_value & (1 << NetworkDefinitionCreationFlag.STRONGLY_TYPED):
                raise TypeError("TensorRT 11 creates strongly typed networks only")
            calls.network_flags.append(flags_value)
            self.inputs: list[Tensor] = []
            self.outputs: list[Tensor] = []

        @property
        def num_inputs(self) -> int:
            return len(self.inputs)

        @property
        def num_outputs(self) -> int:
            return len(self.outputs)

        def get_input(self, index: int) -> Tensor:
            return self.inputs[index]

        def get_output(self, index: int) -> Tensor:
            return self.outputs[index]

    class OnnxParser:
        def __init__(self, network: Network, logger) -> None:
            self.network = network
            self.num_errors = 0

        def parse_from_file(self, path: str) -> bool:
            import onnx

            model = onnx.load(path)
            calls.parsed.append(path)

            def dims(value):
                return [d.dim_value if d.HasField("dim_value") else -1 for d in value.type.tensor_type.shape.dim]

            self.network.inputs = [Tensor(name=v.name, shape=dims(v)) for v in model.graph.input]
            self.network.outputs = [Tensor(name=v.name, shape=dims(v)) for v in model.graph.output]
            return True

        def get_error(self, index: int):
            raise IndexError(index)

    class BuilderConfig:
        def set_memory_pool_limit(self, pool, size: int) -> None:
            calls.pool_limits.append((pool, size))

        def set_flag(self, flag) -> None:
            calls.set_flags.append(flag)

        def clear_flag(self, flag) -> None:
            calls.cleared_flags.append(flag)

        def add_optimization_profile(self, profile) -> int:
            return 0

    class Profile:
        def set_shape(self, name: str, minimum, optimum, maximum) -> None:
            calls.profile_shapes[name] = (tuple(minimum), tuple(optimum), tuple(maximum))

    class Builder:
        def __init__(self, logger) -> None:
            self.logger = logger

        def create_network(self, flags_value: int = 0) -> Network:
            return Network(flags_value)

        def create_builder_config(self) -> BuilderConfig:
            return BuilderConfig()

        def create_optimization_profile(self) -> Profile:
            return Profile()

        def build_serialized_network(self, network: Network, config: BuilderConfig) -> bytes:
            return f"plan from {calls.parsed[-1]}".encode()

    return SimpleNamespace(__version__=version, Builder=Builder, OnnxParser=OnnxParser,
                           MemoryPoolType=MemoryPoolType, NetworkDefinitionCreationFlag=NetworkDefinitionCreationFlag,
                           BuilderFlag=flags, calls=calls)
