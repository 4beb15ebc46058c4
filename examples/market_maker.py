"""The tutorial's market maker, ported to makerlab.

Changes from the tutorial script: the import lines; the market (quote Binance USD-M
BTCUSDT, reference Binance spot BTCUSDT, on the bundled archive's 2024-08-08 23:00 hour);
the archive ``path``; ``run_dir`` in the replayer configs (so ``makerlab report`` can
rebuild the report later); the two broken ``except`` clauses; the report file name's nested quotes (a syntax
error before Python 3.12; the modelling script already wrote it this way); the
``MAKERLAB_CONFIG_KEYS`` override of ``config_keys``; the monitoring page in live mode (two
lines, ``MAKERLAB_PAGE``). ``show`` is False so the
script runs headless; the report lands in ``logs/reports/``. The quoting constants (order value 200,
6 bps spread, 4 bps inventory skew) and the replay window are read from ``PARAMS``, declared with
``makerlab.params`` so that ``makerlab sweep`` can vary them (docs/sweep.md); run on its own, the
script uses the tutorial's values.

    python examples/market_maker.py 0     # backtest
    python examples/market_maker.py 1     # live: needs order entry (see below)
    makerlab sweep examples/market_maker.py 0 --param spread_bps=4,6,8 --out logs/sweeps/spread

``MAKERLAB_ARCHIVE`` overrides the archive location (default ``data/archive``).
Live, the script serves the monitoring page (``oms.serve_page``, docs/monitor.md) on
127.0.0.1:8765 and prints its address; ``MAKERLAB_PAGE`` sets the port (``0``: any free
one) or ``off``.
``MAKERLAB_CONFIG_KEYS`` (JSON) replaces ``config_keys``: mode ``1`` needs order entry on the
quoted exchange and market data from Binance USD-M and spot, e.g. a local venue (the paper
exchange) ``{"binance": {"env": "paper", "base_url": "http://127.0.0.1:PORT/binance", "key":
"KEY_VAR", "secret": "SECRET_VAR"}, "binance_spot": {"env": "paper", "base_url":
"http://127.0.0.1:PORT/binance_spot"}}``. ``MAKERLAB_EXCHANGE`` names the quoted exchange
(default ``binance``; ``bybit`` or ``hyperliquid`` against a paper exchange serving them, with
``key``/``secret`` on that exchange's entry; docs/paper.md, "Trading on it by hand"); the
bundled archive holds Binance only, so a replay keeps the default. The ticker stays
``BTCUSDT`` (the paper serves the archive's symbols; on the real Hyperliquid the coin is ``BTC``).
Live, SIGTERM or Ctrl-C cancels every order before the script ends (the OMS's kill switch).
The body is the tutorial's code as written (its style included), so ruff is told to skip it.
"""
# ruff: noqa

import os
import json
import pytz
import asyncio
import logging
import argparse
import numpy as np
from pprint import pprint
from decimal import Decimal
from datetime import datetime

from makerlab import OMS, Feed, Gateway, params
from makerlab.utils import _time,pdf_snapshot

PARAMS = params(order_value=200, spread_bps=6, skew_bps=4, start='2024-08-08:23', end='2024-08-08:23')

show = False
parser = argparse.ArgumentParser(description="Parse script mode.")
parser.add_argument('mode', type=lambda arg:int(arg), help="Set script mode.")
args = parser.parse_args()
simulated = False if args.mode == 1 else True

config_keys = {
    "binance":{},
    "binance_spot":{},
}
if os.environ.get("MAKERLAB_CONFIG_KEYS"):
    config_keys = json.loads(os.environ["MAKERLAB_CONFIG_KEYS"])

exc = os.environ.get("MAKERLAB_EXCHANGE", 'binance')
tickers = ["BTCUSDT"]
stream_data = {
    "binance":["BTCUSDT"],
    "binance_spot":["BTCUSDT"],
}
reference = {
    'BTCUSDT':('binance_spot','BTCUSDT'),
}
archive_path = os.environ.get(
    "MAKERLAB_ARCHIVE", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "archive"))

page_port = os.environ.get("MAKERLAB_PAGE", "8765") #live: the monitoring page's port (0: any free one; off: no page)
run = None
time = None
replayer = None
print_interval = 120 * 1000 #every 2 mins

if simulated:
    from makerlab.sim import Replayer,Latencies
    start=PARAMS['start']
    end=PARAMS['end']
    latencies={
        Latencies.REQ_PUBLIC:0,
        Latencies.REQ_PRIVATE:0,
        Latencies.ACK_PUBLIC:0,
        Latencies.ACK_PRIVATE:0,
        Latencies.FEED_PUBLIC:0,
        Latencies.FEED_PRIVATE:0,
    }
    replayer_configs = {
        "maker_fees":0.000,
        "taker_fees":0.000,
        "latencies":latencies,
        "run_dir":"./logs/runs",
    }

else:
    run = lambda : asyncio.sleep(1e9)
    time = lambda : _time()

gateway = Gateway(config_keys=config_keys)

async def main():
    await gateway.init_clients()
    if simulated:
        oms,feed = await sim_prepare()
    else:
        oms = OMS(gateway=gateway,exchanges=[exc],refresh_orders_snapshot=10,refresh_positions_snapshot=10)
        feed = Feed(gateway=gateway)
        if page_port != "off": #>> the monitoring page (docs/monitor.md)
            print(f"monitoring page: {(await oms.serve_page(feed,port=int(page_port))).login_url}",flush=True)

    await oms.init()
    await hft(replayer,oms,feed)
    await gateway.cleanup_clients()

async def sim_prepare():
    l2_data = {exchange:{} for exchange in stream_data}
    trade_data = {exchange:{} for exchange in stream_data}

    for exchange,tickers in stream_data.items():
        lob_archives = [
            Feed.load_lob_archives(
                exc=exchange,
                ticker=ticker,
                depth=20,
                start=start,
                end=end,
                path=archive_path,
            ) for ticker in tickers
        ]

        trade_archives = [
            Feed.load_trade_archives(
                exc=exchange,
                ticker=ticker,
                start=start,
                end=end,
                path=archive_path,
            ) for ticker in tickers
        ]

        l2_data[exchange] = {ticker:lob_archive for ticker,lob_archive in zip(tickers,lob_archives)}
        trade_data[exchange] = {ticker:trade_archive for ticker,trade_archive in zip(tickers,trade_archives)}

    global replayer, run, time
    replayer = Replayer(
        l2_data=l2_data,
        trade_data=trade_data,
        gateway=gateway,
        **replayer_configs
    )
    oms = replayer.get_oms()
    feed = replayer.get_feed()
    run = lambda : replayer.play()
    time = lambda : replayer.time()
    return oms, feed

async def hft(replayer,oms,feed):
    #>> subscribe to global tick-data (if any)
    btc_feed = await feed.add_trades_feed(
        exc='binance',
        ticker='BTCUSDT',
        buffer=500,
    )

    await asyncio.gather(*[
        quote_markets(replayer=replayer,oms=oms,feed=feed,ticker=ticker)
        for ticker in tickers
    ])
    await run()

    if simulated:
        await sim_report(replayer)

async def trade_handler(msg):
    pass #msg : (ts,price,size,dir)

async def book_handler(lob):
    pass #lob : makerlab.core.lob.LOB

async def quote_markets(replayer,oms,feed,ticker):
    live_orders = oms.orders_peek(exc=exc)
    live_positions = oms.positions_peek(exc=exc)

    ref_exc,ref_ticker = reference[ticker]
    reference_trade_id = await feed.add_trades_feed(
        exc=ref_exc,
        ticker=ref_ticker,
        buffer=500,
        # handler=trade_handler
    )
    reference_trades = feed.get_feed(reference_trade_id)
    reference_l2_id = await feed.add_l2_book_feed(
        exc=ref_exc,
        ticker=ref_ticker,
        depth=20,
        buffer=100,
        # handler=book_handler
    )
    reference_lob = feed.get_feed(reference_l2_id)

    ticker_trade_id = await feed.add_trades_feed(
        exc=exc,
        ticker=ticker,
        buffer=500,
    )
    ticker_trades = feed.get_feed(ticker_trade_id)

    order_value = PARAMS['order_value']
    spread_bps, skew_bps = PARAMS['spread_bps'], PARAMS['skew_bps']
    last_print = time()
    async def l2_handler(lob):
        nonlocal last_print
        stamp = time()
        stamp = stamp - (stamp % print_interval)
        if stamp != last_print:
            print(datetime.fromtimestamp(time()/1000,tz=pytz.utc))
            last_print = stamp

        pos_amount = live_positions.get_ticker_amount(ticker=ticker)
        inventory_notional = float(pos_amount) * lob.get_mid()
        q = inventory_notional / order_value

        order_bids = live_orders.get_bid_orders(ticker=ticker)
        order_asks = live_orders.get_ask_orders(ticker=ticker)

        tds = reference_trades.get_sample(n=15)
        notional = 20000 if len(tds) == 0 else np.sum(tds[:,1] * tds[:,2])
        ref_vamp = reference_lob.get_vamp(notional)
        if np.isnan(ref_vamp):
            return

        bid = min(
            ref_vamp - ((spread_bps + np.tanh(q) * skew_bps) * 1e-4) * ref_vamp,
            lob.get_bids()[1,0]
        )
        ask = max(
            ref_vamp + ((spread_bps + np.tanh(-q) * skew_bps) * 1e-4) * ref_vamp,
            lob.get_asks()[1,0]
        )

        bid_price = Decimal(str(oms.rounded_price(exc=exc,ticker=ticker,price=bid)))
        ask_price = Decimal(str(oms.rounded_price(exc=exc,ticker=ticker,price=ask)))

        orders = []
        if not any(bid.price == bid_price for bid in order_bids):
            orders.append({
                "exc":exc,
                "ticker":ticker,
                "amount":order_value/lob.get_mid(),
                "price":bid_price,
                "round_to_specs":True,
            })
        if not any(ask.price == ask_price for ask in order_asks):
            orders.append({
                "exc":exc,
                "ticker":ticker,
                "amount":order_value/lob.get_mid() * -1,
                "price":ask_price,
                "round_to_specs":True,
            })

        cancels = []
        for order in order_bids:
            if order.price != bid_price:
                cancels.append({
                    "exc":order.exc,
                    "ticker":order.ticker,
                    "cloid":order.cloid
                })
        for order in order_asks:
            if order.price != ask_price:
                cancels.append({
                    "exc":order.exc,
                    "ticker":order.ticker,
                    "cloid":order.cloid
                })
        if orders:
            try:
                await asyncio.gather(*[
                    oms.limit_order(**order) for order in orders
                ])
            except Exception as e:
                logging.exception(e)
        if cancels:
            try:
                await asyncio.gather(*[
                    oms.cancel_order(**cancel) for cancel in cancels
                ])
            except Exception as e:
                logging.exception(e)

    l2_feed = await feed.add_l2_book_feed(
        exc=exc,
        ticker=ticker,
        depth=20,
        buffer=100,
        handler=l2_handler
    )

async def sim_report(replayer):
    folder = './logs/reports'
    exchange_plot = f'{folder}/exchange.png'
    markouts_plot = f'{folder}/markouts.png'
    prices_plot = '{folder}/prices_{ticker}.png'
    counterparty_plot = f'{folder}/counterparty_pnl.png'
    fairprices_plot = f'{folder}/fairprices.png'

    #see plots and reports
    report_data = []
    report_data.append((
        'configs',
        {
            'exc':exc,
            'tickers':tickers,
            '_start':start,
            '_end':end,
            'params':replayer_configs,
            'strategy':PARAMS,
        },
        'dict'
    ))

    statistics = replayer.statistics()
    pprint(statistics)
    report_data.append(('stats',statistics,'dict'))

    df_exchange = replayer.df_exchange(exc=exc,save=exchange_plot,show=show)
    report_data.append(('perf[inventory]',df_exchange,'df'))
    report_data.append(('perf[inventory]',exchange_plot,'img'))

    df_markouts = replayer.df_markouts(save=markouts_plot,show=show)
    report_data.append(('markouts',markouts_plot,'img'))

    for ticker in tickers:
        save = prices_plot.format(folder=folder,ticker=ticker)
        df_prices = replayer.df_prices(
            ticker=ticker,exc=exc,show=show,save=save
        )
        report_data.append(('fills',save,'img'))

    norm_pnls = replayer.df_counterparty_pnl(exc_tickers=stream_data,save=counterparty_plot,show=show)
    report_data.append(('counterparty_pnl',counterparty_plot,'img'))

    pdf_snapshot(
        save=f'{folder}/{datetime.now().strftime("%Y-%m-%d %H-%M-%S")}.pdf',
        code_file=__file__,
        report_data=report_data,
        include_comments=False
    )

if __name__ == '__main__':
    asyncio.run(main())
