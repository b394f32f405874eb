"""The output folder: what is on disk and who may change it.

``layout`` names every file and folder a run writes and reads a manifest; ``write`` writes a run's datasets into
its data folder; ``publish`` makes a data folder the published dataset atomically (and recovers after a kill);
``lease`` lets one run write an output at a time; ``readback`` reads a published dataset; ``hub`` downloads the
input from and pushes a dataset to the Hugging Face Hub.
"""
