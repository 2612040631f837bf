"""Namespace for OpenMMLab-style projects."""
