"""The tutorial's modelling script (VAMP as a fair-price estimator), ported to makerlab.

Changes from the tutorial script: the import lines; the market (Binance USD-M BTCUSDT
on the bundled archive's 2024-08-08 23:00 hour instead of SOLUSDT); the archive ``path``.
It declares VAMP at five notionals on every book update, compares them as fair-price
estimators, regresses forward returns on the VAMP-to-mid ratio and writes the plots and
a PDF report under ``logs/reports/``.

    python examples/vamp_study.py

``MAKERLAB_ARCHIVE`` overrides the archive location (default: the repo's data/archive).
The body is the tutorial's code as written (its style included), so ruff is told to skip it.
"""
# ruff: noqa

import os
import pytz
import asyncio
import logging
import argparse
import numpy as np
from pprint import pprint
from datetime import datetime
from dotenv import load_dotenv
load_dotenv()

from makerlab import OMS, Feed, Gateway
from makerlab.utils import _time,pdf_snapshot

show = False
simulated = True

config_keys = {
    "binance":{},
}

exc = 'binance'
tickers = ["BTCUSDT"]
stream_data = {
    "binance":["BTCUSDT"],
}
archive_path = os.environ.get(
    "MAKERLAB_ARCHIVE", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "archive"))

run = None
time = None
replayer = None
print_interval = 120 * 1000

if simulated:
    from makerlab.sim import Replayer,Latencies
    start='2024-08-08:23'
    end='2024-08-08:23'
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
    await asyncio.gather(*[
        quote_markets(replayer=replayer,oms=oms,feed=feed,ticker=ticker)
        for ticker in tickers
    ])
    await run()

    if simulated:
        await sim_report(replayer)

async def quote_markets(replayer,oms,feed,ticker):

    last_print = time()
    async def l2_handler(lob):
        nonlocal last_print
        stamp = time()
        stamp = stamp - (stamp % print_interval)
        if stamp != last_print:
            print(datetime.fromtimestamp(time() / 1000,tz=pytz.utc))
            last_print = stamp

        for vamp in [10,30,50,100,200]:
            replayer.declare(
                key=f'vamp{vamp}k',
                value=lob.get_vamp(vamp * 1000),
                exc=exc,
                ticker=ticker,
                group='vamp'
            )

    l2_feed = await feed.add_l2_book_feed(
        exc=exc,
        ticker=ticker,
        depth=20,
        buffer=100,
        handler=l2_handler
    )

async def sim_report(replayer):
    folder = './logs/reports'
    fairprices_plot = f'{folder}/fairprices.png'
    regression_plot = f'{folder}/regression.png'
    regression_influence = f'{folder}/regression_influence.png'
    price_plot = f'{folder}/prices.png'

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
        },
        'dict'
    ))

    metrics_df, declarations, error_dfs = replayer.df_fairprices(group='vamp',plot=False)
    report_data.append(('fairprice metrics',metrics_df,'df'))
    print(metrics_df)

    declarations = replayer.df_declarations(key='vamp100k',exc=exc,ticker='BTCUSDT',group='vamp')
    forward_prices = replayer.augment_forward_prices(declarations)
    print(forward_prices)

    from makerlab.research.regression import GeneticRegression
    model = GeneticRegression(
        formula='div(minus(t60,t0),t0) ~ div(minus(value,t0),t0)',
        intercept=False,
        df=forward_prices,
    )
    regression = model.ols()
    print(regression.summary())
    report_data.append(('regression results',{'summary':regression.summary()},'dict'))

    model.ols(bins=50)
    model.plot(fit=True,show=show,save_fit=regression_plot,save_influence=regression_influence)
    report_data.append(('regression (binned)',regression_plot,'img'))
    report_data.append(('regression (binned)',regression_influence,'img'))

    df_prices = replayer.df_prices(ticker='BTCUSDT',exc=exc,show=show,save=price_plot,key='vamp100k',group='vamp',share_index=True)
    report_data.append(('prices',price_plot,'img'))

    pdf_snapshot(
        save=f'{folder}/{datetime.now().strftime("%Y-%m-%d %H-%M-%S")}.pdf',
        code_file=__file__,
        report_data=report_data,
        include_comments=False
    )

if __name__ == '__main__':
    asyncio.run(main())
