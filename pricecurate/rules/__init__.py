"""The recipe as pure Python (no Spark): what one record becomes, and why it is dropped.

``recipe`` holds recipe ``course-2024``'s rules on one record (scrub, cut to the token budget, the prompt);
``lines`` applies them to a batch of raw JSON lines, one outcome per line; ``categories`` names the 34 inputs.
"""
