"""The sentences behind ``texts.tr``: key → (zh-CN, en); labels are in ``text_labels.py``."""

from __future__ import annotations

SENTENCES: dict[str, tuple[str, str]] = {
    # grades
    "grade.too_few": ("{n} 通对话，少于最低要求 {minimum} 通", "{n} conversations, fewer than the minimum {minimum}"),
    "grade.no_data": ("没有任何指标有数据", "no indicator has data"),
    "grade.reason": ("综合 {score:.1f} 分（{how}）", "score {score:.1f} ({how})"),
    "grade.weakest": ("；最弱：{items}", "; weakest: {items}"),
    "grade.how.absolute": ("绝对阈值", "absolute thresholds"),
    "grade.how.forced_all": ("全员强制分布", "forced distribution across all agents"),
    "grade.how.forced_team": ("团队内强制分布", "forced distribution within the team"),
    "flag.repeated_low": (
        "末位：连续 {n} 期{grades}（{periods}）",
        "repeatedly low: {n} periods in a row {grades} ({periods})",
    ),
    "flag.or_last_in_team": ("或团队末位", " or last in team"),
    # impact verdicts
    "verdict.improved": ("改善", "improved"),
    "verdict.worsened": ("变差", "worsened"),
    "verdict.cannot_tell": ("无法判断", "cannot tell"),
    "verdict.positive": ("正面", "positive"),
    "verdict.negative": ("负面", "negative"),
    "unit.pp": ("{x:+.1f} 个百分点", "{x:+.1f} pp"),
    "span": ("{low} 至 {high}", "{low} to {high}"),
    "method.did": (
        "{t} 名受训客服对比同期 {c} 名未受训客服（双重差分）",
        "{t} trained agents against {c} untrained agents over the same windows (difference-in-differences)",
    ),
    "method.paired": (
        "同一批 {t} 名客服培训前后自比，没有对照组，所以全员共同的变化（季节、促销、人员变动）看起来也一样",
        "the same {t} agents before and after, with no comparison group, so a change that hit everyone (season, "
        "promotions, staffing) would look the same",
    ),
    "verdict.too_few_agents": (
        "无法判断：只有 {k} 名受训客服在培训前后两个窗口内各有至少 {conv} 通有数据的对话，需要 {need} 名",
        "cannot tell: only {k} trained agent(s) have at least {conv} conversations with data in both windows; "
        "{need} are needed",
    ),
    "verdict.no_outcomes": (
        "无法判断：未提供结果数据（--outcomes）；第四级（结果）需要满意度、投诉或重复咨询数据",
        "cannot tell: no outcome data was given (--outcomes); level 4 (results) needs CSAT, complaint or "
        "repeat-contact data",
    ),
    "verdict.no_spread": (
        "无法判断：该指标在这两个窗口内没有变化，无从检验",
        "cannot tell: the indicator does not vary in these windows, so there is nothing to test",
    ),
    "verdict.includes_zero": (
        "无法判断：变化为 {est}，但其 {conf} 区间（{span}）包含 0，“没有变化”同样符合数据；比较方式：{how}",
        "cannot tell: the change is {est} but its {conf} interval ({span}) includes 0, so no change fits the data "
        "as well; compared {how}",
    ),
    "verdict.not_after_holm": (
        "无法判断：{est}（{conf} 区间 {span}，p {p}）单独看值得注意，但共检验 {n} 项指标，Holm 校正后 p {p_adj}，"
        "可能只是偶然；比较方式：{how}",
        "cannot tell: {est} ({conf} interval {span}, p {p}) would be notable alone, but with {n} indicators "
        "tested the Holm-adjusted p {p_adj}, so it may be chance; compared {how}",
    ),
    "moved.rose": ("上升", "rose"),
    "moved.fell": ("下降", "fell"),
    "verdict.moved": (
        "{moved} {est}（{conf} 区间 {span}，Holm 校正 p {p_adj}）；比较方式：{how}",
        "{moved} by {est} ({conf} interval {span}, Holm-adjusted p {p_adj}); compared {how}",
    ),
    "agent.includes_zero": (
        "无法判断：{est}，{conf} 区间 {span} 包含 0",
        "cannot tell: {est}, {conf} interval {span} includes 0",
    ),
    "agent.moved": ("{est}，{conf} 区间 {span}", "{est}, {conf} interval {span}"),
    "agent.too_few": (
        "无法判断：培训前 {b} 通、培训后 {f} 通有数据的对话；每个窗口需要 {need} 通",
        "cannot tell: {b} conversations before and {f} after with data; {need} needed in each",
    ),
    # level 1 (reaction) and level 2 (learning)
    "reaction.too_few": (
        "无法判断：只有 {k} 名学员填写了问卷，需要 {need} 名",
        "cannot tell: only {k} trainee(s) answered the survey; {need} are needed",
    ),
    "reaction.all_same": (
        "全部 {n} 名学员的平均评分都是 {x:.2f}（中性点 {neutral:g}）",
        "all {n} trainees' mean rating is {x:.2f} (neutral point {neutral:g})",
    ),
    "reaction.above": (
        "{n} 名学员平均评分 {mean:.2f}（{conf} 区间 {low:.2f} 至 {high:.2f}，p {p}），高于中性点 {neutral:g}",
        "{n} trainees rated the course {mean:.2f} on average ({conf} interval {low:.2f} to {high:.2f}, p {p}), "
        "above the neutral point {neutral:g}",
    ),
    "reaction.below": (
        "{n} 名学员平均评分 {mean:.2f}（{conf} 区间 {low:.2f} 至 {high:.2f}，p {p}），低于中性点 {neutral:g}",
        "{n} trainees rated the course {mean:.2f} on average ({conf} interval {low:.2f} to {high:.2f}, p {p}), "
        "below the neutral point {neutral:g}",
    ),
    "reaction.includes": (
        "无法判断：{n} 名学员平均评分 {mean:.2f}，{conf} 区间 {low:.2f} 至 {high:.2f} 包含中性点 {neutral:g}",
        "cannot tell: {n} trainees rated the course {mean:.2f} on average; the {conf} interval {low:.2f} to "
        "{high:.2f} includes the neutral point {neutral:g}",
    ),
    "learning.no_pretest": (
        "无法判断：没有前测成绩，无法比较培训前后；见后测通过率",
        "cannot tell: no before scores, so before and after cannot be compared; see the pass rate after",
    ),
    "learning.too_few": (
        "无法判断：只有 {k} 名学员同时有前测和后测成绩，需要 {need} 名",
        "cannot tell: only {k} trainee(s) have both a before and an after score; {need} are needed",
    ),
    "learning.includes_zero": (
        "无法判断：{k} 名学员平均变化 {diff:+.1f} 分，{conf} 区间 {low:+.1f} 至 {high:+.1f} 包含 0",
        "cannot tell: the {k} trainees changed by {diff:+.1f} points on average; the {conf} interval {low:+.1f} "
        "to {high:+.1f} includes 0",
    ),
    "learning.not_after_holm": (
        "无法判断：{k} 名学员平均变化 {diff:+.1f} 分（{conf} 区间 {low:+.1f} 至 {high:+.1f}，p {p}）单独看值得注意"
        "，但共 {n} 项考试，Holm 校正后 p {p_adj}，可能只是偶然",
        "cannot tell: the {k} trainees changed by {diff:+.1f} points ({conf} interval {low:+.1f} to {high:+.1f}, "
        "p {p}), notable alone, but with {n} tests the Holm-adjusted p {p_adj}, so it may be chance",
    ),
    "learning.moved": (
        "同一批 {k} 名学员前后测平均变化 {diff:+.1f} 分（{conf} 区间 {low:+.1f} 至 {high:+.1f}，Holm 校正 p "
        "{p_adj}）",
        "the same {k} trainees changed by {diff:+.1f} points between the tests ({conf} interval {low:+.1f} to "
        "{high:+.1f}, Holm-adjusted p {p_adj})",
    ),
    # re-training candidates
    "exam.default_name": ("考试", "exam"),
    "retrain.qa": (
        "培训后 {n} 通对话综合 {score:.1f} 分，低于{grade}线 {cut:g} 分",
        "{score:.1f} points over {n} conversations after training, below the {grade} line of {cut:g}",
    ),
    "retrain.exam": (
        "{test}后测 {score:g} 分，低于及格线 {mark:g} 分",
        "{test} after training {score:g}, below the pass mark {mark:g}",
    ),
    # the evaluation report (目的 方法 结果 问题 建议)
    "purpose.default": (
        "评估「{course}」培训的效果：学员的反应、所学知识、工作中的行为（质检评分）和业务结果是否因培训而改变",
        "to evaluate the training “{course}”: the trainees' reaction, what they learned, their behaviour at work "
        "(QA scores) and business results",
    ),
    "course.unnamed": ("未命名课程", "unnamed course"),
    "level.1": ("反应", "reaction"),
    "level.2": ("学习", "learning"),
    "level.3": ("行为", "behaviour"),
    "level.4": ("结果", "results"),
    "level.line": ("第{level}级 {name}：{text}", "Level {level} ({name}): {text}"),
    "sep": ("；", "; "),
    "more": (" 等 {k} 人", " and {k} more"),
    "level.no_survey": (
        "未测量：没有提供课后问卷（--survey）",
        "not measured: no after-course survey given (--survey)",
    ),
    "level.no_answers": (
        "未测量：问卷中没有本次培训学员的答卷",
        "not measured: the survey has no answers from this training's trainees",
    ),
    "level.verdict": ("{verdict}。", "{verdict} — "),
    "level.reaction": (
        "{verdict}{reason}；回收率 {rate}（{k}/{n}）",
        "{verdict}{reason}; response rate {rate} ({k}/{n})",
    ),
    "level.no_exam": ("未测量：没有提供考试成绩（--exam）", "not measured: no exam scores given (--exam)"),
    "level.no_exam_rows": (
        "未测量：考试成绩中没有本次培训学员的记录",
        "not measured: the exam file has no scores of this training's trainees",
    ),
    "level.learning": (
        "{test}：{verdict}{reason}；后测通过率 {rate}（{n} 人）",
        "{test}: {verdict}{reason}; pass rate after training {rate} ({n} trainees)",
    ),
    "level.nothing": ("未测量：没有可分析的指标", "not measured: no indicator to analyse"),
    "level.list.improved": ("改善：{items}", "improved: {items}"),
    "level.list.worsened": ("变差：{items}", "worsened: {items}"),
    "level.list.unknown": ("{k} 项无法判断（{items}）", "the data cannot tell for {k}: {items}"),
    "method.l1": (
        "反应：课后问卷，{k}/{n} 名学员作答，评分 {lo:g}–{hi:g} 分，学员平均分与中性点 {neutral:g} 比较（单样本 t "
        "检验）",
        "reaction: the after-course survey, answered by {k} of {n} trainees, rated {lo:g}–{hi:g}; the trainees' "
        "mean ratings against the neutral point {neutral:g} (one-sample t-test)",
    ),
    "method.l2": (
        "学习：{tests}的前测与后测成绩，同一学员配对比较（配对 t 检验，多项考试 Holm 校正），及格线 {mark:g} 分",
        "learning: before and after scores of {tests}, each trainee paired with themselves (paired t-test, "
        "Holm-adjusted across tests); pass mark {mark:g}",
    ),
    "method.control": (
        "，对照 {c} 名同期未受训的客服（双重差分）",
        ", against {c} untrained agents over the same windows (difference-in-differences)",
    ),
    "method.no_control": (
        "，没有对照组（受训客服自身前后对比）",
        ", with no comparison group (the trainees before against after)",
    ),
    "method.l3": (
        "行为：质检评分，培训前 {before} 天（{b0} 至 {b1}）对比培训后 {after} 天（{a0} 至 {a1}），培训期间不计；"
        "{t} 名受训客服{control}",
        "behaviour: QA scores, {before} days before ({b0} to {b1}) against {after} days after ({a0} to {a1}), "
        "training days excluded; {t} trained agents{control}",
    ),
    "method.l4": (
        "结果：客户满意度、投诉和重复咨询（结果数据），以及客户结束时的情绪",
        "results: CSAT, complaints and repeat contacts (outcome data), and the customer's sentiment at the end",
    ),
    "method.l4_proxy": (
        "结果：仅客户结束时的情绪（未提供结果数据）",
        "results: the customer's sentiment at the end only (no outcome data given)",
    ),
    "method.rule": (
        "只有区间不含 0 且 Holm 校正后 p < {alpha:g} 时才判定改善或变差，否则写“无法判断”并说明原因",
        "improved or worsened is said only when the interval excludes 0 and the Holm-adjusted p < {alpha:g}; "
        "otherwise “cannot tell”, with the reason",
    ),
    "problem.worsened": ("{name}变差：{reason}", "{name} worsened: {reason}"),
    "problem.reaction": (
        "学员对课程的反应偏负面：{reason}",
        "the trainees' reaction to the course was negative: {reason}",
    ),
    "problem.learning": ("{test}成绩下降：{reason}", "{test} scores fell: {reason}"),
    "problem.below_pass": (
        "{test}后测有 {k} 名学员低于及格线 {mark:g} 分",
        "{k} trainee(s) scored below the pass mark {mark:g} in the {test} after training",
    ),
    "problem.retraining": (
        "{k} 名学员培训后仍未达标，见再培训名单",
        "{k} trainee(s) are still below standard after the training; see the re-training list",
    ),
    "problem.behaviour_unknown": (
        "行为层面未能判断培训是否带来变化：每项指标都无法判断",
        "whether the training changed behaviour cannot be told: every indicator says cannot tell",
    ),
    "problem.no_control": (
        "没有对照组，无法区分培训效果与同期全员共同的变化",
        "no comparison group, so the training cannot be told apart from changes that hit everyone",
    ),
    "problem.not_measured": ("未测量的层级：{levels}", "levels not measured: {levels}"),
    "problem.none": ("未发现问题", "no problems found"),
    "suggest.retrain": ("安排再培训：{agents}", "re-train: {agents}"),
    "suggest.focus": ("下次培训重点：{items}", "focus the next training on: {items}"),
    "suggest.wait": (
        "培训后 1–3 个月再评估行为：延长培训后窗口（--after-days）或积累更多对话",
        "judge behaviour again 1–3 months after training: a longer after window (--after-days) or more "
        "conversations",
    ),
    "suggest.control": (
        "保留一组同期未受训的客服作对照，以区分培训效果与全员共同的变化",
        "keep a group of untrained agents over the same period, to tell the training apart from changes that hit "
        "everyone",
    ),
    "suggest.survey": (
        "每次课后发放反应问卷（--survey），评估第一级",
        "hand out a reaction survey after each course (--survey) for level 1",
    ),
    "suggest.exam": (
        "培训前安排前测、培训后安排后测（--exam），评估第二级",
        "test the trainees before and after the training (--exam) for level 2",
    ),
    "suggest.outcomes": (
        "提供客户满意度、投诉和重复咨询数据（--outcomes），评估第四级",
        "provide CSAT, complaint and repeat-contact data (--outcomes) for level 4",
    ),
    # impact notes
    "note.no_control": (
        "没有对照组：两个窗口内都有数据的未受训客服少于 {n} 名，结果只是受训客服的自身对比，无法区分培训与全员共同"
        "的变化。",
        "No comparison group: fewer than {n} untrained agents have data in both windows, so results compare the "
        "trained agents with themselves and cannot separate training from changes that hit everyone.",
    ),
    "note.excluded": (
        "{k} 名客服因在窗口内参加了其他培训，未列入对照组。",
        "{k} agent(s) left out of the comparison group because they had other training inside the windows.",
    ),
    "note.no_outcomes": (
        "未提供结果数据：第四级仅依据客户结束时的情绪。",
        "No outcome data given: level 4 rests on customer end sentiment only.",
    ),
    "note.outside": (
        "问卷和考试中有 {k} 行来自未参加本次培训的客服，已忽略。",
        "{k} survey or exam row(s) name agents not trained in this event and were ignored.",
    ),
    "note.too_little_data": (
        "{k} 名学员培训后对话不足 {n} 通且没有后测成绩，无法判断是否需要再培训：{agents}",
        "{k} trainee(s) have fewer than {n} conversations after training and no exam after it, so whether they "
        "need re-training cannot be told: {agents}",
    ),
    # dataset notes
    "data.undated": (
        "{k} 条评分记录没有 started_at，不属于任何周期：{ids}",
        "{k} score record(s) have no started_at and are in no period: {ids}",
    ),
    "data.off_roster": (
        "{k} 名客服有评分但不在花名册上（归入 {team}）：{ids}",
        "{k} agent(s) have scores but are not on the roster (team {team}): {ids}",
    ),
    "data.stray_reviews": (
        "{k} 条复核记录对应的对话不在评分中：{ids}",
        "{k} review(s) name conversations not in the scores: {ids}",
    ),
    "data.stray_outcomes": (
        "{k} 行结果数据对应的对话不在评分中，已忽略：{ids}",
        "{k} outcome row(s) name conversations not in the scores and were ignored: {ids}",
    ),
    "data.unknown_trainees": (
        "培训记录中有 {k} 名客服既不在花名册上也没有评分：{ids}",
        "training events name {k} agent(s) with no roster entry and no scores: {ids}",
    ),
    "data.repeats": (
        "重复咨询：{k} 通对话带有客户标识（customer_id）",
        "repeat contacts: {k} conversation(s) name a customer",
    ),
    "data.repeats_recent": (
        "；其中 {k} 通开始于存档最后一通对话前不到 {hours:g} 小时且客户尚未再来，无法判断，不计入重复咨询率",
        "; {k} started less than {hours:g} h before the archive's last conversation with no return yet, too "
        "recent to tell, and are left out of the repeat-contact rate",
    ),
    # the command-line summaries
    "cli.no_dated": ("没有带日期的对话，无可评等级。", "No dated conversations: nothing to grade."),
    "cli.grades_head": (
        "按{kind}评定，{first} 至 {last}；周期 {latest}：",
        "Grades by {kind}, {first} to {last}; period {latest}:",
    ),
    "cli.more_agents": ("… 另有 {k} 名客服，见 grades.csv", "… {k} more agents in grades.csv"),
    "cli.note": ("注：{note}", "note: {note}"),
    "cli.training_head": (
        "培训 {event} {course}：受训 {t} 人，未受训 {c} 人；培训前 {b0}..{b1}，培训后 {a0}..{a1}",
        "Training {event} {course}: {t} trained, {c} untrained; before {b0}..{b1}, after {a0}..{a1}",
    ),
    "cli.purpose": ("目的：{text}", "purpose: {text}"),
    "cli.retraining": ("再培训：{agent}：{reasons}", "re-train {agent}: {reasons}"),
    "cli.problems": ("问题：", "problems:"),
    "cli.suggestions": ("建议：", "suggestions:"),
    "cli.wrote": ("已写入 {paths}", "wrote {paths}"),
    "cli.level_short": ("第{level}级", "L{level}"),
    # kefuqa topics (高频问题追踪): its summary and the sentences of its report
    "tp.head": (
        "高频问题追踪（按{kind}，{when}，{timezone}）：{n} 个会话按客户前 {turns} 句发言分为 {k} 类（{how}）",
        "Recurring customer problems (by {kind}, {when}, {timezone}): {n} conversations grouped by the "
        "customer's first {turns} turns into {k} topics ({how})",
    ),
    "tp.span": ("{first} 至 {last}", "{first} to {last}"),
    "tp.no_dates": ("无日期", "no dates"),
    "tp.how.silhouette": ("按轮廓系数自动选择", "chosen by silhouette"),
    "tp.how.fixed": ("按 --topics 指定", "set by --topics"),
    "tp.how.only": ("只能分为 2 类", "2 is the only possible count"),
    "tp.trend_pp": ("{pp:+.1f} 个百分点", "{pp:+.1f} pp"),
    "tp.flat": ("持平", "no change"),
    "tp.more": ("… 另有 {k} 类，见 topics.csv", "… {k} more topics in topics.csv"),
    "tp.weak": (
        "类别区分度低（轮廓系数 {s:.2f}），这批会话中的问题很少重复，类别仅供参考",
        "the topics barely differ (silhouette {s:.2f}): few problems recur in these conversations, so take "
        "the topics as a rough list",
    ),
    "tp.rejected": ("跳过 {k} 行无效输入", "{k} invalid input line(s) skipped"),
    "tp.without_customer": ("{k} 个会话没有客户发言", "{k} conversation(s) without customer turns"),
    "tp.no_words": (
        "{k} 个会话的客户发言只有寒暄或语气词，未归类",
        "{k} conversation(s) whose customer turns hold only greetings and fillers were not grouped",
    ),
    "tp.undated": (
        "{k} 个会话没有 started_at，计入“{undated}”",
        "{k} conversation(s) have no started_at and count as “{undated}”",
    ),
    "tp.notes": ("说明：{notes}。", "Notes: {notes}."),
    "tp.how_read": (
        "每个会话取客户前 {turns} 句发言，先脱敏，再用 jieba 分词并去掉寒暄和语气词，按 TF-IDF 与 k-means 聚类；"
        "每类以权重最高的 {name_terms} 个词命名，一个会话只归入一类。趋势是最后两个周期占比之差（百分点），"
        "最后一个周期可能尚未结束；类别是词的分组，不是对语义的理解。",
        "Each conversation's first {turns} customer turns are masked, segmented with jieba without greetings and "
        "fillers, and grouped by TF-IDF and k-means; a topic is named by its {name_terms} heaviest terms, and a "
        "conversation belongs to one topic only. The trend is the change in share between the last two periods "
        "(percentage points); the last period may still be running. Topics are groups of words, not understood "
        "meaning.",
    ),
    "tp.silhouette": ("各类别数的轮廓系数：{values}", "Silhouette by topic count: {values}"),
}
