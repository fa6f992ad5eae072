"""The nano pipeline's resumption: a finished epoch-trained part is recognised from its weights and logs alone."""
from a2llm.train.nano import _finished


def test_a_part_is_finished_when_its_weights_and_last_epochs_log_row_exist(tmp_path):
    part = tmp_path / "rvq"
    part.mkdir()
    assert not _finished(part, 5)                                        # nothing yet
    (part / "train_log.csv").write_text("epoch,step,seconds\n1,251,61.7\n2,502,60.1\n")
    assert not _finished(part, 5)                                        # no weights, two epochs of five
    (part / "model.safetensors").write_bytes(b"weights")
    assert not _finished(part, 5) and _finished(part, 2)                 # interrupted after epoch 2 / done at 2
    (part / "train_log.csv").write_text("epoch,step,seconds\n" + "".join(f"{e},{e * 250},60\n" for e in range(1, 6)))
    assert _finished(part, 5)                                            # no train_state.pt needed
