"""The identity map holds objects weakly: one object per id while anything holds it, freed as
soon as nothing does (no reference cycle waits for the cyclic garbage collector), edits kept."""

from __future__ import annotations

import weakref

import detorm
from detorm import Experiment
from tests.sdk.conftest import Cluster


def test_objects_dropped_by_a_loop_are_freed_at_once(
    session: detorm.Session, no_cyclic_gc: None
) -> None:
    seen: list[weakref.ref[Experiment]] = []
    for exp in Experiment.query(session).page_size(3):
        assert exp.tags is not None and exp.config is not None  # watched containers built
        seen.append(weakref.ref(exp))
    del exp
    assert len(seen) == 7
    assert [ref() for ref in seen] == [None] * 7
    assert len(session.identity) == 0


def test_one_object_per_id_while_held(session: detorm.Session, cluster: Cluster) -> None:
    exp_id = cluster.experiments["resnet-base"]
    held = session.get(Experiment, exp_id)
    again = Experiment.query(session).filter(id=exp_id).one()
    assert again is held
    assert any(obj is held for obj in session.identity)


def test_an_edited_object_stays_alive_until_committed(
    writer: detorm.Session, fresh_cluster: Cluster, no_cyclic_gc: None
) -> None:
    exp_id = fresh_cluster.experiments["vit-large"]
    exp = writer.get(Experiment, exp_id)
    exp.tags.add("kept")
    ref = weakref.ref(exp)
    del exp
    assert ref() is not None  # a pending edit holds it
    writer.commit()
    assert ref() is None
    assert "kept" in writer.get(Experiment, exp_id).tags


def test_a_tag_set_kept_after_its_experiment_still_records_edits(
    writer: detorm.Session, fresh_cluster: Cluster, no_cyclic_gc: None
) -> None:
    exp_id = fresh_cluster.experiments["vit-large"]
    tags = writer.get(Experiment, exp_id).tags  # the experiment itself is dropped at once
    assert writer.identity.get(Experiment, exp_id) is None
    tags.add("from-a-kept-set")
    assert len(writer.pending()) == 1  # the edit is queued on the session's object for that id
    writer.commit()
    with detorm.Session(fresh_cluster.url, user="determined", password="", environ={}) as other:
        assert set(other.get(Experiment, exp_id).tags) == {"from-a-kept-set"}


def test_a_metadata_dict_kept_after_its_model_still_records_edits(
    writer: detorm.Session, no_cyclic_gc: None
) -> None:
    from detorm import Model

    model = Model.create("weakly-held", metadata={"a": 1}, session=writer)
    metadata = model.metadata
    name = model.name
    del model
    metadata["b"] = 2
    writer.commit()
    assert dict(writer.get(Model, name).metadata) == {"a": 1, "b": 2}
