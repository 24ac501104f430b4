import pytest
from trl import SFTConfig, SFTTrainer

from trackrec.llm import chat
from trackrec.llm.hf_engine import answer_token_ids
from trackrec.llm.training import sft_dataset


def test_rectune_rows_put_the_loss_on_the_answer_token_only(tiny_lm, tmp_path):
    model, tokenizer = tiny_lm
    yes, no = answer_token_ids(tokenizer)
    rows = sft_dataset(tokenizer, ["Whether the user will like it?", "Another"], ["Yes", "No"], answer_only=True)
    for row, answer in zip(rows, (yes, no), strict=True):
        assert sum(row["completion_mask"]) == 1 and row["completion_mask"][-1] == 1
        assert row["input_ids"][-1] == answer
    args = SFTConfig(output_dir=str(tmp_path), completion_only_loss=True, use_cpu=True, bf16=False, report_to=[])
    trainer = SFTTrainer(model=model, args=args, train_dataset=rows, processing_class=tokenizer)
    labels = trainer.data_collator([trainer.train_dataset[i] for i in range(2)])["labels"]
    assert ((labels != -100).sum(1) == 1).all()  # what trl's SFTTrainer trains on: one token per row


def test_distillation_rows_train_on_the_reccot_and_eos(tiny_lm):
    _, tokenizer = tiny_lm
    rows = sft_dataset(tokenizer, ["Summarise"], ["The user likes Action"], answer_only=False)
    prompt = chat.prompt_ids(tokenizer, "Summarise")
    assert rows[0]["input_ids"][: len(prompt)] == prompt and rows[0]["input_ids"][-1] == tokenizer.eos_token_id
    assert rows[0]["completion_mask"] == [0] * len(prompt) + [1] * (len(rows[0]["input_ids"]) - len(prompt))


def test_unknown_answer_word_is_refused(tiny_lm):
    _, tokenizer = tiny_lm
    with pytest.raises(KeyError):
        sft_dataset(tokenizer, ["p"], ["Maybe"], answer_only=True)
