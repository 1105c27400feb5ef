# One image for web (ASGI) and worker (Celery).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DJANGO_SETTINGS_MODULE=config.settings.production
WORKDIR /app
COPY requirements/ requirements/
RUN pip install --no-cache-dir -r requirements/base.txt
COPY . .
RUN SECRET_KEY=build-only-collectstatic python manage.py collectstatic --noinput
EXPOSE 8001
CMD ["uvicorn", "config.asgi:application", "--host", "0.0.0.0", "--port", "8001", "--loop", "uvloop", "--http", "httptools", "--no-access-log"]
