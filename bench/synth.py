"""Synthetic archives for benchmarks (not training data): plausible chats
assembled from short phrase banks, with timestamps."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

CUSTOMER = ["在吗？", "我的快递三天了还没到", "这个能退吗", "怎么还没发货？？？", "尺码偏小怎么办",
            "收到的东西坏了😡", "好的谢谢", "行吧", "什么态度，我要投诉", "運費險怎麼用", "电话13812345678",
            "麻烦快点", "知道了", "太慢了吧"]
AGENT = ["亲，您好，这边帮您查一下物流哦", "不好意思让您久等了", "已为您提交工单，24小时内回复", "已为您退款，请查收",
         "这个我不知道", "你自己看详情页", "理解您的心情，给您添麻烦了", "还有其他可以帮您的吗？祝您生活愉快",
         "请提供一下订单号", "没办法，规定就是这样", "好的", "稍等", "已经给您补发了"]


def make_archive(path: Path, n: int, seed: int = 7) -> Path:
    rng = random.Random(seed)
    tz = timezone(timedelta(hours=8))
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            t = datetime(2026, 3, 1, 9, tzinfo=tz) + timedelta(minutes=rng.randrange(60 * 24 * 90))
            turns = []
            for k in range(rng.randint(4, 20)):
                speaker = "customer" if k % 2 == 0 else "agent"
                bank = CUSTOMER if speaker == "customer" else AGENT
                t += timedelta(seconds=rng.randint(5, 180))
                turns.append({"speaker": speaker, "text": rng.choice(bank), "ts": t.isoformat()})
            row = {"id": f"b-{i:07d}", "agent_id": f"a-{rng.randrange(50):03d}", "turns": turns}
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path
