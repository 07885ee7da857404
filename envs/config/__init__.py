"""Configuration, the ground floor of `envs`: the strict YAML -> dataclass loader
(`loader`, with ``key.sub=value`` overrides), YAML 1.2 floats (`yaml_io`), range checks
(`checks`), "did you mean" hints (`suggest`), every error class of the package (`errors`)
and the command-line helpers (`cli`: one line and exit 2 on a known error).

May import: third-party packages only (it is the lowest room).
"""
