"""cex-arb-collector: real-time best bid/ask collector for cross-exchange arbitrage research."""

__version__ = "0.1.0"
