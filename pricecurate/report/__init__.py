"""What a person reads about a dataset: the HTML report with its plots, and the data card (the output's README.md).

``data`` reads a dataset into the numbers, ``plots`` draws them, ``html`` renders the page, ``card`` the data card;
``sections`` holds the wording the card and the report share; ``build`` writes the report's files.
"""
