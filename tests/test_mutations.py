"""The list of deliberate breaks (tools/mutations.py) still fits the code it breaks."""

from tools.mutations import MUTATIONS, ROOT, Mutation, problems


def test_every_mutation_finds_its_text_once_and_the_tests_it_names() -> None:
    assert problems(ROOT) == []
    moved = Mutation("moved", "ui/gpu.py", "no such text", "", ("tests/test_app.py::gone",))
    assert problems(ROOT, [moved, MUTATIONS[0]]) == [
        "moved: its text is in ui/gpu.py 0 times, not once",
        "moved: no test tests/test_app.py::gone",
    ]
