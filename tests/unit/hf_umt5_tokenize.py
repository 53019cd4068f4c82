"""Hugging Face's side of tests/unit/test_umt5_tokenizer.cpp.

  convert SRC DST BYTE_FALLBACK EXTRA_IDS
      Copies the tokenizer directory SRC (spiece.model, made by la-mkcheckpoint)
      to DST and adds the tokenizer.json that transformers' T5 converter makes
      of spiece.model (the kind of file google/umt5-xxl ships), with the
      Unigram model's byte_fallback set to BYTE_FALLBACK (0/1) and EXTRA_IDS
      <extra_id_N> special tokens (tokenizer_config.json updated to match).
  tokenize DIR PROMPTS_JSON MAX_LENGTHS OUT_JSON
      Tokenizes each prompt the way the reference does
      (wan/modules/tokenizers.py: AutoTokenizer.from_pretrained(DIR), the
      'whitespace' cleaning, padding='max_length', truncation=True) for each
      of the comma-separated MAX_LENGTHS and writes {"fast": bool, "<length>":
      {"ids": [[...]], "mask": [[...]], "pieces": [[...]]}, ...}.
      The cleaning leaves out ftfy.fix_text, which the engine does not
      reproduce (docs/text-and-audio.md).
  variants SRC WORK PROMPTS_JSON MAX_LENGTHS OUT_JSON
      Both in one run (transformers takes seconds to import): tokenizes with
      SRC as it is, then with WORK/<name> converted as named in VARIANTS, and
      writes {"<name>": <what tokenize writes>, ...} with "spiece" for SRC.
"""
import html
import json
import os
import shutil
import sys
import warnings

import regex as re  # the reference's choice; its \s is not the re module's
from transformers import AutoTokenizer, T5Tokenizer
from transformers.convert_slow_tokenizer import convert_slow_tokenizer


def convert(src, dst, byte_fallback, extra_ids):
    shutil.copytree(src, dst)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "byte fallback ... not implemented in the fast tokenizers"
        slow = T5Tokenizer(vocab_file=os.path.join(dst, "spiece.model"), extra_ids=extra_ids, legacy=True)
        fast = convert_slow_tokenizer(slow)
    spec = json.loads(fast.to_str())
    assert spec["model"]["type"] == "Unigram"
    spec["model"]["byte_fallback"] = bool(byte_fallback)
    with open(os.path.join(dst, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(spec, f, ensure_ascii=False)
    path = os.path.join(dst, "tokenizer_config.json")
    with open(path, encoding="utf-8") as f:
        config = json.load(f)
    config["extra_ids"] = extra_ids
    with open(path, "w", encoding="utf-8") as f:
        json.dump(config, f, indent=2)


# name: (byte_fallback, extra_ids) of the converted tokenizer.json
VARIANTS = {"tokenizer-json": (0, 0), "tokenizer-json-byte-fallback": (1, 3)}


def clean(text):
    text = html.unescape(html.unescape(text)).strip()
    return re.sub(r"\s+", " ", text).strip()


def tokenize(directory, prompts_json, max_lengths, out_json=None):
    with open(prompts_json, encoding="utf-8") as f:
        prompts = json.load(f)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tok = AutoTokenizer.from_pretrained(directory)
    cleaned = [clean(p) for p in prompts]
    out = {"fast": bool(tok.is_fast)}
    for max_length in max_lengths:
        enc = tok(cleaned, padding="max_length", truncation=True, max_length=max_length)
        out[str(max_length)] = {
            "ids": enc["input_ids"],
            "mask": enc["attention_mask"],
            "pieces": [tok.convert_ids_to_tokens(ids) for ids in enc["input_ids"]],
        }
    if out_json is None:
        return out
    with open(out_json, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False)


def variants(src, work, prompts_json, max_lengths, out_json):
    out = {"spiece": tokenize(src, prompts_json, max_lengths)}
    for name, (byte_fallback, extra_ids) in VARIANTS.items():
        convert(src, os.path.join(work, name), byte_fallback, extra_ids)
        out[name] = tokenize(os.path.join(work, name), prompts_json, max_lengths)
    with open(out_json, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False)


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "convert":
        convert(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    elif len(sys.argv) == 6 and sys.argv[1] == "tokenize":
        tokenize(sys.argv[2], sys.argv[3], [int(n) for n in sys.argv[4].split(",")], sys.argv[5])
    elif len(sys.argv) == 7 and sys.argv[1] == "variants":
        variants(sys.argv[2], sys.argv[3], sys.argv[4], [int(n) for n in sys.argv[5].split(",")], sys.argv[6])
    else:
        sys.exit(__doc__)
