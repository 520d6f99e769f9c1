"""Launch files and parameter YAMLs agree with the parameters the nodes really declare.

ROS 2's `launch` and `launch_ros` come with a ROS install, not from pip, so nothing here imports
them: the launch files are read with `ast` (arguments, constants, Node calls), their pure helpers
are compiled on their own, and `generate_launch_description()` runs once against small stand-ins
that have the real constructors' signatures. The YAMLs are loaded by real rclpy, as a node does.
"""

from __future__ import annotations

import ast
import dataclasses
import random
import sys
import types
from pathlib import Path

import pytest
import rclpy
import yaml
from rclpy.parameter import Parameter

from socialmae_rt.app.options import RunOptions
from socialmae_rt.nodes.laugh_responder import LaughResponder, LaughResponderConfig
from socialmae_rt.nodes.ros_inputs import RosInputConfig
from socialmae_rt.nodes.social_perception import NodeConfig, parameter_names, run_option_parameters
from socialmae_rt.stream.postprocess import PostprocessConfig
from socialmae_rt.util.options import from_flat

ROOT = Path(__file__).resolve().parents[2]
LAUNCH_DIR = ROOT / "launch"
CONFIG_DIR = LAUNCH_DIR / "config"
PERCEPTION_LAUNCH = LAUNCH_DIR / "social_perception.launch.py"
RESPONDER_LAUNCH = LAUNCH_DIR / "social_perception_with_responder.launch.py"
LAUNCH_FILES = sorted(LAUNCH_DIR.glob("*.launch.py"))
YAML_FILES = sorted(CONFIG_DIR.glob("*.yaml"))

PY_TYPE = {Parameter.Type.STRING: str, Parameter.Type.INTEGER: int, Parameter.Type.DOUBLE: float,
           Parameter.Type.BOOL: bool}
TYPE_NAMES = {"str": str, "int": int, "float": float, "bool": bool}
ROS_TYPE = {python: ros for ros, python in PY_TYPE.items()}


# -- what the nodes declare ---------------------------------------------------------------------

def perception_parameter_types() -> dict[str, type]:
    """Python type of every social_perception parameter, from the node's own sources of defaults."""
    known = {name: PY_TYPE[kind] for name, _, kind in run_option_parameters()}
    post, inputs = PostprocessConfig(), RosInputConfig()
    known.update({f.name: type(getattr(post, f.name)) for f in dataclasses.fields(post)})
    known.update({"input_" + f.name: type(getattr(inputs, f.name)) for f in dataclasses.fields(inputs)})
    node = NodeConfig()
    known.update({f.name: type(getattr(node, f.name)) for f in dataclasses.fields(node)})
    names = parameter_names()
    unknown = [name for name in names if name not in known]
    assert not unknown, f"no type known for {unknown}: teach perception_parameter_types() where they come from"
    return {name: known[name] for name in names}


def responder_parameter_types() -> dict[str, type]:
    defaults = LaughResponderConfig()
    return {f.name: type(getattr(defaults, f.name)) for f in dataclasses.fields(defaults)}


NODE_PARAMETERS = {"social_perception": perception_parameter_types, "laugh_responder": responder_parameter_types}
# The node each launch file declares pass-through arguments for.
LAUNCH_NODE = {PERCEPTION_LAUNCH.name: "social_perception", RESPONDER_LAUNCH.name: "laugh_responder"}


# -- reading launch files with ast --------------------------------------------------------------

def parse(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def call_name(call: ast.Call) -> str | None:
    func = call.func
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def calls(tree: ast.AST, name: str) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and call_name(n) == name]


def keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def constant(tree: ast.Module, name: str):
    """The literal value of a module-level `NAME = <literal>`."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f"no module-level constant {name}")


def declared_arguments(path: Path) -> dict[str, dict]:
    """name -> {description, default} of every DeclareLaunchArgument(...) written in the file."""
    declared = {}
    for call in calls(parse(path), "DeclareLaunchArgument"):
        assert call.args and isinstance(call.args[0], ast.Constant), f"{path.name}: argument name must be a literal"
        name = call.args[0].value
        assert name not in declared, f"{path.name}: {name} declared twice"
        description, default = keyword(call, "description"), keyword(call, "default_value")
        declared[name] = {
            "description": description.value if isinstance(description, ast.Constant) else None,
            "default": default.value if isinstance(default, ast.Constant) else default,
        }
    return declared


def helpers(path: Path, *names: str) -> dict:
    """Compile only the named module-level functions and constants of a launch file (no launch import)."""
    tree = parse(path)
    def is_wanted(node: ast.stmt) -> bool:
        if isinstance(node, ast.FunctionDef):
            return node.name in names
        return isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id in names for t in node.targets)

    wanted = [node for node in tree.body if is_wanted(node)]
    assert {getattr(n, "name", None) or n.targets[0].id for n in wanted} == set(names)
    namespace: dict = {}
    exec(compile(ast.Module(body=wanted, type_ignores=[]), str(path), "exec"), namespace)
    return namespace


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_every_launch_argument_is_described_and_a_parameter_or_launch_only(path):
    declared = declared_arguments(path)
    launch_only = constant(parse(path), "LAUNCH_ONLY_ARGUMENTS")
    parameters = NODE_PARAMETERS[LAUNCH_NODE[path.name]]()
    assert declared, f"{path.name} declares no arguments"
    for name, argument in declared.items():
        assert isinstance(argument["description"], str) and argument["description"].strip(), \
            f"{path.name}: {name} has no description"
        assert (name in parameters) != (name in launch_only), \
            f"{path.name}: {name} must be either a {LAUNCH_NODE[path.name]} parameter or in LAUNCH_ONLY_ARGUMENTS"
    assert set(launch_only) <= set(declared), f"{path.name}: LAUNCH_ONLY_ARGUMENTS names undeclared arguments"


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_pass_through_arguments_have_the_parameter_type_and_override_only_when_given(path):
    declared = declared_arguments(path)
    pass_through = {name for name in declared if name not in constant(parse(path), "LAUNCH_ONLY_ARGUMENTS")}
    kinds = constant(parse(path), "PARAMETER_TYPES")
    assert set(kinds) == pass_through, f"{path.name}: PARAMETER_TYPES must list exactly the pass-through arguments"
    parameters = NODE_PARAMETERS[LAUNCH_NODE[path.name]]()
    for name, kind in kinds.items():
        assert TYPE_NAMES[kind] is parameters[name], f"{path.name}: {name} is a {parameters[name].__name__} parameter"
        # A default would override the params file every time; "" means "not given".
        assert declared[name]["default"] == "", f"{path.name}: {name} must default to '' (not given)"


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_node_actions_use_installed_executables_and_real_parameter_names(path):
    setup_py = parse(ROOT / "setup.py")
    executables = constant(setup_py, "ROS_EXECUTABLES")
    tree = parse(path)
    nodes = calls(tree, "Node")
    assert nodes, f"{path.name} starts no Node"
    for node in nodes:
        executable = keyword(node, "executable")
        value = executable.value if isinstance(executable, ast.Constant) else constant(tree, executable.id)
        assert value in executables, f"{path.name}: executable {value!r} is not one setup.py installs"
        name = keyword(node, "name")
        node_name = name.value if isinstance(name, ast.Constant) else constant(tree, name.id)
        assert executables[value] == f"socialmae_rt.nodes.{node_name}"
        # Literal override keys, e.g. {"onset_topic": ...}, must be parameters of that node.
        parameters = NODE_PARAMETERS[node_name]()
        for dictionary in [d for d in ast.walk(keyword(node, "parameters")) if isinstance(d, ast.Dict)]:
            for key in dictionary.keys:
                if isinstance(key, ast.Constant):
                    assert key.value in parameters, f"{path.name}: {key.value} is not a {node_name} parameter"


def test_pass_through_values_are_converted_to_the_parameter_type():
    ns = helpers(PERCEPTION_LAUNCH, "typed_overrides", "PARAMETER_TYPES")
    convert = lambda given: ns["typed_overrides"](given, ns["PARAMETER_TYPES"])  # noqa: E731
    overrides = convert({"source": "0", "mic": "", "hop": "1", "max_faces": "2", "embedding": "True", "weights": ""})
    assert overrides == {"source": "0", "hop": 1.0, "max_faces": 2, "embedding": True}
    assert [type(overrides[k]) for k in ("source", "hop", "max_faces", "embedding")] == [str, float, int, bool]
    assert convert({name: "" for name in ns["PARAMETER_TYPES"]}) == {}  # nothing given: the YAML decides
    with pytest.raises(ValueError, match="hop:=fast must be a number"):
        convert({"hop": "fast"})
    with pytest.raises(ValueError, match="embedding:=yes must be true or false"):
        convert({"embedding": "yes"})


def test_input_topic_remappings():
    remap = helpers(PERCEPTION_LAUNCH, "topic_remappings")["topic_remappings"]
    assert remap("", "") == []
    assert remap("/camera/image_raw", "/audio/audio") == [
        ("image", "/camera/image_raw"), ("image/compressed", "/camera/image_raw/compressed"),
        ("audio", "/audio/audio"), ("audio_info", "/audio/audio_info")]


def test_responder_listens_to_the_perception_node_in_its_namespace(context):
    onset_topic = helpers(RESPONDER_LAUNCH, "onset_topic")["onset_topic"]
    assert onset_topic("") == LaughResponderConfig().onset_topic
    for namespace in ("robot1", "/robot1", "/robot1/", "a/b"):
        # Where the perception node really publishes ~/laughter_onset in that namespace.
        node = rclpy.create_node("social_perception", namespace=namespace.strip("/"), context=context)
        try:
            assert onset_topic(namespace) == node.resolve_topic_name("~/laughter_onset")
        finally:
            node.destroy_node()


# -- running generate_launch_description() against stand-ins ------------------------------------

class Recorded:
    def __init__(self, kind: str, args: tuple, kwargs: dict) -> None:
        self.kind, self.args, self.kwargs = kind, args, kwargs


def _stand_in_modules() -> dict[str, types.ModuleType]:
    """launch / launch_ros stand-ins recording their calls; signatures as in ROS 2 Humble to Rolling."""

    class LaunchDescription:
        def __init__(self, initial_entities=None, *, deprecated_reason=None):
            self.entities = list(initial_entities or [])

    def DeclareLaunchArgument(name, *, default_value=None, description=None, choices=None, **kwargs):  # noqa: N802
        return Recorded("DeclareLaunchArgument", (name,), dict(default_value=default_value, description=description))

    def OpaqueFunction(*, function, args=None, kwargs=None, **left_over_kwargs):  # noqa: N802
        return Recorded("OpaqueFunction", (), dict(function=function))

    class LaunchConfiguration:
        def __init__(self, variable_name, *, default=None):
            self.variable_name = variable_name

        def perform(self, context):
            return context.launch_configurations[self.variable_name]  # the real one raises when unset too

    def Node(*, executable, package=None, name=None, namespace=None, exec_name=None, parameters=None,  # noqa: N802
             remappings=None, ros_arguments=None, arguments=None, output="log", emulate_tty=False):
        return Recorded("Node", (), dict(executable=executable, package=package, name=name, namespace=namespace,
                                         parameters=parameters, remappings=remappings, ros_arguments=ros_arguments))

    modules = {name: types.ModuleType(name) for name in
               ("launch", "launch.actions", "launch.substitutions", "launch_ros", "launch_ros.actions")}
    modules["launch"].LaunchDescription = LaunchDescription
    modules["launch.actions"].DeclareLaunchArgument = DeclareLaunchArgument
    modules["launch.actions"].OpaqueFunction = OpaqueFunction
    modules["launch.substitutions"].LaunchConfiguration = LaunchConfiguration
    modules["launch_ros.actions"].Node = Node
    return modules


def launch(path: Path, monkeypatch, **arguments: str) -> list[Recorded]:
    """Like `ros2 launch <path> name:=value ...`: the Node actions it would run."""
    for name, module in _stand_in_modules().items():
        monkeypatch.setitem(sys.modules, name, module)
    namespace: dict = {"__file__": str(path), "__name__": "launch_file"}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    entities = namespace["generate_launch_description"]().entities
    configurations = {e.args[0]: e.kwargs["default_value"] for e in entities if e.kind == "DeclareLaunchArgument"}
    unknown = set(arguments) - set(configurations)
    assert not unknown, f"{path.name} has no argument {unknown}"
    context = types.SimpleNamespace(launch_configurations={**configurations, **arguments})
    actions = []
    for entity in entities:
        if entity.kind == "OpaqueFunction":
            actions += entity.kwargs["function"](context)
    return actions


def test_perception_launch_passes_the_yaml_then_only_the_arguments_given(monkeypatch):
    (node,) = launch(PERCEPTION_LAUNCH, monkeypatch)
    assert (node.kwargs["package"], node.kwargs["executable"], node.kwargs["name"]) == \
        ("socialmae_rt", "social_perception", "social_perception")
    assert node.kwargs["parameters"] == [str(CONFIG_DIR / "social_perception.yaml")]
    assert node.kwargs["remappings"] == []

    (node,) = launch(PERCEPTION_LAUNCH, monkeypatch, source="0", hop="1", embedding="true", namespace="robot1",
                     params_file=str(CONFIG_DIR / "ros_topics.yaml"), image_topic="/camera/image_raw")
    assert node.kwargs["parameters"] == [str(CONFIG_DIR / "ros_topics.yaml"),
                                         {"source": "0", "hop": 1.0, "embedding": True}]
    assert ("image", "/camera/image_raw") in node.kwargs["remappings"]
    assert node.kwargs["namespace"].perform(types.SimpleNamespace(launch_configurations={"namespace": "robot1"})) \
        == "robot1"


def test_responder_launch_starts_both_nodes_wired_together(monkeypatch):
    perception, responder = launch(RESPONDER_LAUNCH, monkeypatch, namespace="robot1", model="tiny", cooldown_s="3")
    assert perception.kwargs["parameters"][1] == {"model": "tiny"}
    assert (responder.kwargs["executable"], responder.kwargs["name"], responder.kwargs["namespace"]) == \
        ("laugh_responder", "laugh_responder", "robot1")
    responder_file, overrides = responder.kwargs["parameters"]
    assert responder_file == str(CONFIG_DIR / "laugh_responder.yaml")
    assert overrides == {"cooldown_s": 3.0, "onset_topic": "/robot1/social_perception/laughter_onset"}


# -- parameter YAMLs ----------------------------------------------------------------------------

def yaml_parameters(path: Path) -> tuple[str, dict]:
    """(node name, {parameter: value}) of a `/**/<node>: ros__parameters:` file."""
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict) and len(data) == 1, f"{path.name}: one node per file"
    ((key, body),) = data.items()
    # `/**/<node>` matches the node in every namespace; `<node>:` alone only in the root namespace.
    assert key.startswith("/**/"), f"{path.name}: key {key!r} should be /**/<node> (the launch files take a namespace)"
    node = key[len("/**/"):]
    assert node in NODE_PARAMETERS, f"{path.name}: {node!r} is not a node of this package"
    assert list(body) == ["ros__parameters"], f"{path.name}: expected only ros__parameters under {key}"
    return node, body["ros__parameters"]


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: p.name)
def test_yaml_keys_are_parameters_with_the_declared_type(path):
    node, values = yaml_parameters(path)
    declared = NODE_PARAMETERS[node]()
    assert values, f"{path.name} sets nothing"
    for name, value in values.items():
        assert name in declared, f"{path.name}: {name!r} is not a {node} parameter (known: {', '.join(declared)})"
        assert type(value) is declared[name], \
            f"{path.name}: {name}: {value!r} is a {type(value).__name__}, the node declares a {declared[name].__name__}"


@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: p.name)
def test_yaml_values_pass_the_nodes_validation(path):
    node, values = yaml_parameters(path)
    if node == "laugh_responder":
        LaughResponderConfig(**values)
        return
    post = {f.name for f in dataclasses.fields(PostprocessConfig)}
    run = {name for name, _, _ in run_option_parameters()}
    from_flat(RunOptions, {k: v for k, v in values.items() if k in run},
              base=RunOptions(postprocess=PostprocessConfig(**{k: v for k, v in values.items() if k in post})))
    RosInputConfig(**{k[len("input_"):]: v for k, v in values.items() if k.startswith("input_")})


@pytest.fixture
def params_context(monkeypatch):
    """Factory: an rclpy context started like a node process given `--params-file <path>`."""
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    contexts = []

    def start(path: Path) -> rclpy.context.Context:
        ctx = rclpy.context.Context()
        rclpy.init(args=["--ros-args", "--params-file", str(path)], context=ctx, domain_id=random.randint(1, 200))
        contexts.append(ctx)
        return ctx

    yield start
    for ctx in contexts:
        rclpy.shutdown(context=ctx)


BUILT_IN = {"use_sim_time", "start_type_description_service"}  # every rclpy node has these


@pytest.mark.parametrize("namespace", ["", "robot1"])
@pytest.mark.parametrize("path", YAML_FILES, ids=lambda p: p.name)
def test_rclpy_loads_the_yaml_with_the_types_the_node_declares(path, namespace, params_context):
    node_name, values = yaml_parameters(path)
    declared = NODE_PARAMETERS[node_name]()
    # A plain node of that name: every override ROS parsed for it, typed as rcl read the YAML.
    node = rclpy.create_node(node_name, namespace=namespace, context=params_context(path),
                             automatically_declare_parameters_from_overrides=True)
    try:
        loaded = {name: p for name, p in node.get_parameters_by_prefix("").items() if name not in BUILT_IN}
        assert set(loaded) == set(values), f"{path.name}: ROS read {sorted(loaded)} for /{namespace}/{node_name}"
        for name, parameter in loaded.items():
            expected = ROS_TYPE[declared[name]]
            assert parameter.type_ == expected, \
                f"{path.name}: {name} loads as {parameter.type_.name}, the node declares {expected.name}"
            assert parameter.value == values[name]
    finally:
        node.destroy_node()


def test_laugh_responder_starts_with_its_yaml(params_context):
    path = CONFIG_DIR / "laugh_responder.yaml"
    _, values = yaml_parameters(path)
    responder = LaughResponder(context=params_context(path))
    try:
        assert {name: getattr(responder.config, name) for name in values} == values
    finally:
        responder.destroy_node()


def test_the_launch_readme_says_what_the_params_files_hold():
    """launch/README.md's table describes each params file; the values it names are the file's."""
    import re

    rows = dict(re.findall(r"^\| `config/(\S+\.yaml)` \| (.+) \|$", (LAUNCH_DIR / "README.md").read_text(), re.M))
    assert set(rows) == {path.name for path in CONFIG_DIR.glob("*.yaml")}  # every file described, no other

    def values(name: str) -> dict:
        (node,) = yaml.safe_load((CONFIG_DIR / name).read_text()).values()
        return node["ros__parameters"]

    perception, claim = values("social_perception.yaml"), rows["social_perception.yaml"]
    camera = re.search(r"camera (\d+) at (\d+)x(\d+)/(\d+) fps", claim)
    assert camera and (perception["source"], perception["width"], perception["height"], int(perception["fps"])) == (
        camera.group(1), int(camera.group(2)), int(camera.group(3)), int(camera.group(4)))
    assert re.search(r"(\w+) model on the `(\S+)` backend", claim).groups() == (perception["model"], perception["backend"])
    assert float(re.search(r"hop ([\d.]+) s", claim).group(1)) == perception["hop"]
    assert ("the default microphone" in claim) == (perception["mic"] == "default")
    topics, claim = values("ros_topics.yaml"), rows["ros_topics.yaml"]
    assert (f"`source: {topics['source']}`" in claim) and (f"`mic: {topics['mic']}`" in claim)
    responder, claim = values("laugh_responder.yaml"), rows["laugh_responder.yaml"]
    assert all(word in claim for word in ("command topic", "command", "cooldown", "sound")) and {
        "command_topic", "command", "cooldown_s", "sound"} <= set(responder)
