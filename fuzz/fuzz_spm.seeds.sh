#!/bin/sh
# Seeds for fuzz_spm: the small sentencepiece models of the spm tests.
cp tests/fixtures/spm/*.model "$1"/
