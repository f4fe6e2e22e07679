"""Networks: backbones (:mod:`hashbench.models.backbones`: ``build_backbone``, ``input_spec``,
``BACKBONES``), the hash layer (``heads``) and the GAN nets (``gan``).

A backbone maps its adapted input (see :class:`hashbench.data.transforms.InputAdapter`) to features;
a method puts a hash head on top. Submodules are imported explicitly, so importing this package
stays light.
"""
