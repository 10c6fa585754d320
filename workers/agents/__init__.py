"""Built-in agents. A template names one as ``<module>.<function>`` (``finance.liquidate``)."""
