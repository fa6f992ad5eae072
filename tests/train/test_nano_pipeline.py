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


def test_the_checkpoint_ships_the_smoothed_decoder_only_once_it_is_trained(tmp_path):
    import pytest

    from a2llm.train.nano import NanoConfig, _shipped_rvq

    work = tmp_path / "run"
    (work / "rvq").mkdir(parents=True)
    assert _shipped_rvq(NanoConfig(work=str(work))) == work / "rvq"                 # no fine-tune asked for
    cfg = NanoConfig(work=str(work), rvq_smooth_epochs=2, rvq_smooth_config="configs/nano/tokenizer-smooth.json")
    with pytest.raises(FileNotFoundError, match="rvq-smooth"):
        _shipped_rvq(cfg)                                                          # asked for, not trained
    smooth = work / "rvq-smooth"
    smooth.mkdir()
    (smooth / "model.safetensors").write_bytes(b"weights")
    (smooth / "train_log.csv").write_text("epoch,step,seconds\n1,10,5\n2,20,5\n")
    assert _shipped_rvq(cfg) == smooth
    with pytest.raises(ValueError, match="rvq_smooth_config"):
        NanoConfig(rvq_smooth_epochs=2)                                            # caught before any training
