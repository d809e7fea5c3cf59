"""The labels behind ``texts.tr`` (charts, report headings and columns): key → (zh-CN, en)."""

from __future__ import annotations

LABELS: dict[str, tuple[str, str]] = {
    # charts
    "chart.score": ("得分", "score"),
    "chart.trajectory": ("成长轨迹 {agent}", "Growth trajectory {agent}"),
    "chart.agents": ("人数", "agents"),
    "chart.distribution": ("等级分布", "Grade distribution"),
    "chart.trained": ("培训组", "trained"),
    "chart.untrained": ("对照组", "untrained"),
    "chart.before": ("培训前", "before"),
    "chart.after": ("培训后", "after"),
    "chart.before_after": ("培训前后对比（{conf} 区间）", "Before / after training ({conf} intervals)"),
    # the HTML report
    "r.title": ("绩效与培训报告", "QA grades and training report"),
    "r.meta": (
        "生成于 {generated} · 周期与窗口按 {timezone} 计 · 评分规则：{rubric}",
        "Generated {generated} · periods and windows in {timezone} · rubric: {rubric}",
    ),
    "period.month": ("月", "month"),
    "period.quarter": ("季度", "quarter"),
    "period.year": ("年", "year"),
    "r.grades_title": ("绩效等级（按{kind}）", "Grades by {kind}"),
    "r.forced": ("等级按强制分布评定。", "Grades by forced distribution."),
    "r.absolute": (
        "等级按绝对阈值评定（除非评分规则另行设置，均为默认值）：{cuts}；低于最后一档为{lowest}。",
        "Grades by absolute thresholds (defaults unless the rubric says otherwise): {cuts}; below: {lowest}.",
    ),
    "r.min_conv": (
        "某周期对话少于 {n} 通的客服记为{insufficient}，不评等级。",
        "An agent with fewer than {n} conversations in a period gets {insufficient} (insufficient data), not a "
        "grade.",
    ),
    "r.records": ("共 {n} 条评分记录", "{n} score records"),
    "r.undated": (
        "，其中 {n} 条没有开始时间，不属于任何周期",
        ", of which {n} have no start time and are in no period",
    ),
    "r.repeated_low_rule": (
        "。连续 {n} 期结果偏低的客服标记为末位。",
        ". Agents with {n} low periods in a row are flagged (末位).",
    ),
    "r.distribution": ("等级分布", "Grade distribution"),
    "r.agents": ("客服（{period}）", "Agents, {period}"),
    "r.flagged_title": ("末位标记", "Repeatedly low (末位)"),
    "r.trajectories": ("成长轨迹", "Growth trajectories"),
    "r.trajectory_of": ("{agent} 的成长轨迹", "growth trajectory of {agent}"),
    "r.teams": ("团队", "Teams"),
    "r.impact_title": ("培训效果评估报告：{event} {course}", "Training evaluation: {event} {course}"),
    "r.s.purpose": ("一、目的", "1. Purpose"),
    "r.s.method": ("二、方法", "2. Method"),
    "r.s.results": ("三、结果", "3. Results"),
    "r.s.problems": ("四、问题", "4. Problems"),
    "r.s.suggestions": ("五、建议", "5. Suggestions"),
    "r.windows": (
        "培训 {start} 至 {end}（培训期间不计）。培训前窗口 {b0} 至 {b1}；培训后窗口 {a0} 至 {a1}。受训客服 {t} 名"
        "，对照组未受训客服 {c} 名。某项指标中，客服须在每个窗口各有至少 {n} 通有数据的对话才计入。",
        "Training {start} to {end} (training days excluded). Before: {b0} to {b1}; after: {a0} to {a1}. {t} "
        "trained agents; {c} untrained agents as the comparison group. An agent counts for an indicator with at "
        "least {n} conversations with data in each window.",
    ),
    "r.four_levels": (
        "四级评估汇总（柯氏模型：反应、学习、行为、结果）",
        "Summary over the four Kirkpatrick levels (reaction, learning, behaviour, results)",
    ),
    "r.level_head": ("第{level}级 {name}", "Level {level}: {name}"),
    "r.levels_34": (
        "第三、四级 行为与结果（质检评分与结果数据）",
        "Levels 3 and 4: behaviour and results (QA scores and outcomes)",
    ),
    "r.per_agent": (
        "逐人明细（描述性：每人每项指标一个区间，未做多重比较校正）",
        "Per agent (descriptive: one interval per agent and indicator, not adjusted for the many comparisons)",
    ),
    "r.retraining": ("再培训名单", "Re-training candidates"),
    "r.retraining_rule": (
        "培训后质检综合分低于 {cut:g} 分（至少 {n} 通对话），或后测低于及格线 {mark:g} 分的学员。",
        "Trainees whose QA score after training is below {cut:g} (with at least {n} conversations), or whose exam "
        "after training is below the pass mark {mark:g}.",
    ),
    "r.no_retraining": ("没有学员低于标准。", "No trainee is below standard."),
    "r.how_to_read": (
        "阅读说明：“效果”是受训客服的变化减去同期未受训客服的变化（双重差分）；没有对照组时，是受训客服自身的平均"
        "变化。只有区间不含 0 且 Holm 校正后 p 低于 {alpha:g} 时才判定改善或变差，否则为无法判断。第一级 = 反应（"
        "问卷），第二级 = 学习（考试），第三级 = 行为（质检评分），第四级 = 结果。",
        "How to read: “effect” is the trained agents' change minus the untrained agents' change over the same "
        "windows (difference-in-differences), or, without a comparison group, the trained agents' own average "
        "change. Improved/worsened is claimed only when the interval excludes 0 and the Holm-adjusted p-value is "
        "below {alpha:g}; otherwise the data cannot tell. Level 1 = reaction (survey), level 2 = learning "
        "(exams), level 3 = behaviour (QA scores), level 4 = results.",
    ),
    "method.name.did": ("双重差分", "diff-in-diff"),
    "method.name.paired": ("配对", "paired"),
    "status.mixed": ("有升有降", "mixed"),
    "status.not_measured": ("未测量", "not measured"),
    "col.agent": ("客服", "agent"),
    "col.team": ("团队", "team"),
    "col.period": ("周期", "period"),
    "col.conversations": ("对话数", "conversations"),
    "col.conversations_after": ("培训后对话数", "conversations after"),
    "col.score": ("得分", "score"),
    "col.score_after": ("培训后得分", "score after"),
    "col.grade": ("等级", "grade"),
    "col.rank": ("团队排名", "rank in team"),
    "col.change": ("变化", "change"),
    "col.why": ("原因", "why"),
    "col.flag": ("标记", "flag"),
    "col.indicator": ("指标", "indicator"),
    "col.value": ("数值", "value"),
    "col.interval": ("区间", "interval"),
    "col.agents": ("人数", "agents"),
    "col.graded": ("已评等级", "graded"),
    "col.mean_score": ("平均分", "mean score"),
    "col.level": ("层级", "level"),
    "col.level_name": ("名称", "name"),
    "col.verdict": ("结论", "verdict"),
    "col.what": ("说明", "what the data says"),
    "col.respondents": ("作答人数", "respondents"),
    "col.response_rate": ("回收率", "response rate"),
    "col.mean_rating": ("平均评分", "mean rating"),
    "col.neutral": ("中性点", "neutral point"),
    "col.question": ("题目", "question"),
    "col.test": ("考试", "test"),
    "col.paired": ("前后测人数", "with both"),
    "col.before": ("培训前", "before"),
    "col.after": ("培训后", "after"),
    "col.effect_size": ("效应量", "effect size"),
    "col.p_holm": ("p（Holm）", "p (Holm)"),
    "col.pass_rate": ("后测通过率（≥ {mark:g}）", "pass rate after (≥ {mark:g})"),
    "col.agents_tu": ("人数（受训/未受训）", "agents (trained/untrained)"),
    "col.trained_ba": ("受训组 前 → 后", "trained before → after"),
    "col.effect": ("效果", "effect"),
    "col.method": ("方法", "method"),
    "col.n_before": ("培训前 n", "n before"),
    "col.n_after": ("培训后 n", "n after"),
    # the topics report (kefuqa topics)
    "tp.title": ("高频问题追踪", "Recurring customer problems"),
    "tp.meta": ("生成于 {generated} · 周期按 {timezone} 计", "Generated {generated} · periods in {timezone}"),
    "tp.overview": ("问题排行", "Topics by size"),
    "tp.by_period": ("各周期会话数（占当期比例）", "Conversations per period (share of the period)"),
    "tp.by_team": ("各团队会话数", "Conversations per team"),
    "tp.details": ("各类问题详情", "Topic details"),
    "tp.terms": ("关键词（权重）", "Top terms (weight)"),
    "tp.examples": ("典型客户发言（已脱敏）", "Example customer turns (masked)"),
    "tp.col.rank": ("排名", "rank"),
    "tp.col.topic": ("类别", "topic"),
    "tp.col.count": ("会话", "conversations"),
    "tp.col.share": ("占比", "share"),
    "tp.col.trend": ("较上期（{before}→{last}）", "vs previous ({before}→{last})"),
    "tp.col.trend_none": ("较上期", "vs previous"),
    "tp.col.problem": ("问题", "problem"),
    "tp.undated_col": ("无日期", "undated"),
}
