"""The tokenizer: built once on the driver, shipped as JSON, rebuilt once per Python worker.

``spec`` finds a tokenizer (the default Llama 3.1 8B converted offline, a file, a folder, a Hub id) and gives its
JSON; ``engine`` picks how a worker encodes it: ``tiktoken_codec`` where tiktoken is exact, else ``codec``
(Hugging Face ``tokenizers``). This module holds only the names a config may give, so reading a config needs no
tokenizer library.
"""

LLAMA31 = "llama-3.1-8b"  # the default tokenizer's name
ENGINES = ("auto", "tokenizers", "tiktoken")
