# CPU image for the kefu-qa service. Build: docker build -t kefu-qa .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    KEFUQA_HOME=/home/kefuqa/.kefuqa

RUN useradd --create-home --uid 10001 kefuqa
WORKDIR /app
COPY pyproject.toml README.md ./
COPY kefuqa ./kefuqa
COPY models ./models
COPY service ./service
COPY training ./training
COPY labeling ./labeling
COPY grading ./grading
COPY examples ./examples
# torch is pinned to its CPU build; the CPU index avoids the multi-GB CUDA wheel.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
 && pip install ".[neural]"

USER kefuqa
EXPOSE 8000
ENTRYPOINT ["kefuqa"]
CMD ["--help"]
